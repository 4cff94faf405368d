"""Deciding returns: an outcome and one earlier signal at its location in, one decision out.

For every signal another partner sent about the outcome's location — received by the hub
*before* the outcome, and about a time within the longest ``match.within`` of any return rule
before it — the hub decides what that partner — the signal's own source — is told:

* **delivered** under the first return rule in force that names the partner, whose condition
  held for the outcome, that answers this type of signal and reaches back far enough — with
  the approver's approval when the rule requires one: the fields the rule shares, and which of
  the partner's **own** signals the outcome answers (``answers``: its signal id and type);
* **held** (a withheld record of its own) while no approval covers the pair;
* **withheld**, with the reason, otherwise: no rule allows returning this outcome to this
  partner (deny by default), the rule's covenant is not in force, its condition did not hold,
  the signal is not one the rule answers, no rule delivered the signal to anyone, or the
  approver refused.

Three guards keep an outcome from answering a *probe* — a signal sent only to learn what the
police found at an address:

* "before the outcome" is the hub's **receipt** order (:func:`arrival`: the broker's append time
  of the Kafka record, or the worker's safe bound where the broker did not stamp it), never the partner-written envelope ``time``: a signal received after the
  outcome is not a candidate, however far it is backdated;
* only a signal that a covenant rule **delivered** to some recipient (it took part in the
  exchange) is answered; one every rule withheld — a score below the rule's threshold — is
  withheld, audited;
* an approval covers only the pairs whose signal the hub had received before the approval —
  the returns the approver can have been asked about. The first approval or refusal
  received after the signal decides; a pair no approval covers is held for a new one.

A partner is never told about another partner's signals: the answered signal is always one
it sent itself (the recipient *is* the signal's source), and the message carries no identifier
and no signal id of anyone else (the checker keeps identifiers and personal fields out of a
return's ``share``). Ids are deterministic — a replay decides the same pairs under the same
ids, so the audit store and recipients drop the duplicates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import orjson

from services.core.covenant.validity import refusal
from services.core.decision import Decision, exchange_id
from services.core.outcomes.entries import (
    ApprovalEntry,
    OutcomeEntry,
    SignalEntry,
    arrival,
    rule_key,
)
from services.core.policy import LOCAL_TIME, Policy, ReturnPlan
from services.core.records import audit_record, feed_message

__all__ = [
    "ACTOR",
    "DEFAULT_WINDOW",
    "MATCHING",
    "FeedItem",
    "ReturnBatch",
    "covering",
    "decide_returns",
    "match_record",
    "match_window",
    "return_id",
]

ACTOR: Final = "schakel-outcomes"
MATCHING: Final = "hub:outcomes"
"""The recipient column of the audit record of matching an outcome: the hub itself."""
DEFAULT_WINDOW: Final = timedelta(days=366)
"""How far back an outcome is matched when no return rule says (withholdings are audited)."""


def match_window(policy: Policy) -> timedelta:
    """How far back before an outcome earlier signals are considered: the longest
    ``match.within`` of any return rule (or a year)."""
    return max(
        (plan.within for plans in policy.return_plans.values() for plan in plans),
        default=DEFAULT_WINDOW,
    )


def return_id(outcome: OutcomeEntry, answered: SignalEntry, *, held: bool = False) -> str:
    """The exchange id of returning ``outcome`` about ``answered`` to its source."""
    what = "held" if held else "return"
    return exchange_id(
        outcome.source, outcome.signal_id, f"{answered.source}\x1f{what}\x1f{answered.signal_id}"
    )


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One feed message to produce on ``feed.<recipient>`` (the shell puts it in the outbox)."""

    exchange_id: str
    recipient: str
    key: bytes
    value: bytes


@dataclass
class ReturnBatch:
    """The audit records and feed messages of the returns decided in one batch."""

    audit: list[dict[str, Any]] = field(default_factory=list)
    feed: list[FeedItem] = field(default_factory=list)
    delivered: int = 0
    held: int = 0
    withheld: int = 0


def covering(approvals: Iterable[ApprovalEntry], answered: SignalEntry) -> ApprovalEntry | None:
    """The approval that decides returning about ``answered``: the first (by receipt) that
    the hub received after the signal; None when every approval predates it."""
    after = [a for a in approvals if arrival(answered) < arrival(a)]
    return min(after, key=lambda a: (arrival(a), a.signal_id), default=None)


def decide_returns(
    pairs: Iterable[tuple[OutcomeEntry, SignalEntry]],
    policy: Policy,
    approvals: Mapping[tuple[str, str, str], Sequence[ApprovalEntry]],
    now: datetime,
) -> ReturnBatch:
    """Decide every (outcome, earlier signal) pair once; pairs that are not candidates (the
    outcome's own source, the hub's own stacked-location alerts, a signal the hub received
    after the outcome, one about a time after it or beyond the window) are skipped.
    ``approvals``: every approval per (outcome source, outcome signal id, approver)."""
    out = ReturnBatch()
    window = match_window(policy)
    day = now.astimezone(LOCAL_TIME).date()
    seen: set[tuple[str, str, str, str]] = set()
    for outcome, answered in pairs:
        pair = (outcome.source, outcome.signal_id, answered.source, answered.signal_id)
        if pair in seen or answered.source == outcome.source or answered.partner_kind == "hub":
            continue  # the source knows its own outcome; the hub's own alerts are no partner's
        if not arrival(answered) < arrival(outcome):
            continue  # received after the outcome: a probe, whatever time it claims
        if not (outcome.time - window <= answered.time <= outcome.time):
            continue
        seen.add(pair)
        plans = [
            p
            for p in policy.return_plans.get((outcome.source, outcome.signal_type), ())
            if p.recipient == answered.source
        ]
        if not plans:
            _withhold(
                out,
                outcome,
                answered,
                now,
                None,
                f"no covenant rule allows returning {outcome.signal_type} from "
                f"{outcome.source} to {answered.source}",
            )
            continue
        in_force = [p for p in plans if p.covenant.in_force(day)]
        if not in_force:
            _withhold(out, outcome, answered, now, plans[-1], refusal(plans[-1].covenant, day))
            continue
        applied = [p for p in in_force if rule_key(p.ref) in outcome.rules]
        if not applied:
            _withhold(
                out,
                outcome,
                answered,
                now,
                in_force[0],
                f"condition of rule {in_force[0].ref.rule_id} not met for this outcome",
            )
            continue
        plan = next((p for p in applied if _answers(p, outcome, answered)), None)
        if plan is None:
            _withhold(
                out,
                outcome,
                answered,
                now,
                applied[0],
                f"rule {applied[0].ref.rule_id} does not answer this signal "
                "(its type is not matched, or it lies further back than `match.within`)",
            )
            continue
        if not answered.rules:
            _withhold(
                out,
                outcome,
                answered,
                now,
                plan,
                f"no covenant rule delivered signal {answered.signal_id} to any recipient: "
                "only a signal that took part in an exchange is answered",
            )
            continue
        approval = None
        if plan.approval is not None:
            approval = covering(
                approvals.get((outcome.source, outcome.signal_id, plan.approval), ()), answered
            )
            if approval is None:
                out.held += 1
                record = audit_record(
                    _withheld(
                        outcome,
                        answered,
                        now,
                        plan,
                        f"held: awaiting the per-case approval of {plan.approval} "
                        f"(rule {plan.ref.rule_id}); an approval covers only signals "
                        "received before it",
                        return_id(outcome, answered, held=True),
                    ),
                    actor=ACTOR,
                )
                out.audit.append({**record, "answers": _answers_record(answered)})
                continue
            if approval.decision != "approved":
                _withhold(
                    out,
                    outcome,
                    answered,
                    now,
                    plan,
                    f"{plan.approval} refused this outcome's returns "
                    f"(approval signal {approval.signal_id})",
                    approval,
                )
                continue
        _deliver(out, outcome, answered, now, plan, policy, approval)
    return out


def _answers(plan: ReturnPlan, outcome: OutcomeEntry, answered: SignalEntry) -> bool:
    if plan.match_types is not None and answered.signal_type not in plan.match_types:
        return False
    return outcome.time - plan.within <= answered.time


def _answers_record(answered: SignalEntry) -> dict[str, str]:
    return {
        "source": answered.source,
        "signal_id": answered.signal_id,
        "type": answered.signal_type,
    }


def _withheld(
    outcome: OutcomeEntry,
    answered: SignalEntry,
    now: datetime,
    plan: ReturnPlan | None,
    reason: str,
    record_id: str | None = None,
) -> Decision:
    return Decision(
        exchange_id=record_id or return_id(outcome, answered),
        signal_id=outcome.signal_id,
        source=outcome.source,
        signal_type=outcome.signal_type,
        recipient=answered.source,
        result="withheld",
        decided_at=now,
        rule=plan.ref if plan is not None else None,
        reason=reason,
        withheld_fields=outcome.leaves,
        subjects=outcome.subjects,
    )


def _withhold(
    out: ReturnBatch,
    outcome: OutcomeEntry,
    answered: SignalEntry,
    now: datetime,
    plan: ReturnPlan | None,
    reason: str,
    approval: ApprovalEntry | None = None,
) -> None:
    out.withheld += 1
    record = audit_record(_withheld(outcome, answered, now, plan, reason), actor=ACTOR)
    record["answers"] = _answers_record(answered)
    if approval is not None:
        record["approval"] = _approval_record(approval)
    out.audit.append(record)


def _approval_record(approval: ApprovalEntry) -> dict[str, str]:
    return {
        "by": approval.approver,
        "decision": approval.decision,
        "signal_id": approval.signal_id,
    }


def _deliver(
    out: ReturnBatch,
    outcome: OutcomeEntry,
    answered: SignalEntry,
    now: datetime,
    plan: ReturnPlan,
    policy: Policy,
    approval: ApprovalEntry | None,
) -> None:
    payload: dict[str, Any] = {}
    disclosed: dict[str, str] = {}
    for step in plan.steps:
        value: Any = outcome.data
        for part in step.path:
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            continue
        target = payload
        for part in step.path[:-1]:
            target = target.setdefault(part, {})
        target[step.path[-1]] = step.apply(value) if step.apply is not None else value
        disclosed[step.dotted] = step.spec
    disclosed.update(plan.envelope.disclosed)
    disclosed["answers.signal_id"] = "own-reference"
    disclosed["answers.type"] = "own-reference"
    exchange = return_id(outcome, answered)
    envelope: dict[str, Any] = {
        "exchange_id": policy.pseudonymiser.exchange_token(exchange),
        "type": outcome.signal_type,
    }
    if plan.envelope.source:
        envelope["source"] = outcome.source
    if plan.envelope.time is not None:
        envelope["time"] = plan.envelope.time(outcome.time.isoformat().replace("+00:00", "Z"))
    shared = plan.shared
    decision = Decision(
        exchange_id=exchange,
        signal_id=outcome.signal_id,
        source=outcome.source,
        signal_type=outcome.signal_type,
        recipient=answered.source,
        result="delivered",
        decided_at=now,
        rule=plan.ref,
        payload=payload,
        disclosed=disclosed,
        withheld_fields=tuple(p for p in outcome.leaves if p not in shared)
        + plan.envelope.withheld,
        subjects=outcome.subjects,
        retention_days=plan.retention_days,
        envelope=envelope,
    )
    answers = {"signal_id": answered.signal_id, "type": answered.signal_type}
    record = audit_record(decision, actor=ACTOR)
    record["answers"] = _answers_record(answered)
    if approval is not None:
        record["approval"] = _approval_record(approval)
    out.audit.append(record)
    message = {**feed_message(decision), "answers": answers}
    feed_id = decision.feed_id or exchange
    out.feed.append(FeedItem(exchange, answered.source, feed_id.encode(), orjson.dumps(message)))
    out.delivered += 1


def match_record(outcome: OutcomeEntry, now: datetime) -> dict[str, Any]:
    """The audit record of processing one outcome for matching (one per outcome; the returns
    it leads to are records of their own)."""
    basis = outcome.basis
    return {
        "record_id": exchange_id(outcome.source, outcome.signal_id, MATCHING),
        "action": "use",
        "result": "matched",
        "object": outcome.signal_type,
        "signal_id": outcome.signal_id,
        "origin": outcome.source,
        "recipient": MATCHING,
        "actor": ACTOR,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "processing_activity": basis.purpose if basis else None,
        "trace_id": outcome.signal_id,
        "covenant": basis.as_dict() if basis else None,
        "fields": dict.fromkeys(sorted(outcome.subjects), "internal-pseudonym"),
        "withheld_fields": [],
        "pseudonyms": {},
        "subjects": dict(outcome.subjects),
        "reason": None,
        "retention_days": None,
        "reidentify": False,
    }
