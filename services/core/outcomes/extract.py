"""From a decided signal to what the outcome store keeps (pure; pseudonyms from the key store).

Three kinds of input matter:

* an **indicator signal** (any type that is not an outcome or an approval) that a covenant
  rule in force decided — delivered or withheld by its condition, as coverage counts — and
  that names a premises: indexed by the hub-internal pseudonyms of its address, BAG id and
  EAN, so a later outcome at that location finds it. A signal no rule delivered is indexed
  for the indicators (with no delivering rules) but is never *answered*: only a signal that
  took part in an exchange may learn an outcome (:mod:`services.core.outcomes.returns`);
* an **outcome** (``x-outcome``) that a rule covers — a return rule, or a ``to`` rule that
  routed it — and that names a premises: kept with its shareable fields and the return rules
  whose condition held (conditions are evaluated here, on the whole signal, once);
* an **approval** (``x-approval``) from a party a return rule names as its approver.

Every entry carries the moment the hub **received** it (``received``: the broker's append
time of its Kafka record, or a bound the worker sets where the broker did not stamp it —
:meth:`services.outcomes.batch.Record.received`) — the
partner-written envelope ``time`` says what period a signal is about, never when the hub
learnt it. Everything else is skipped with a reason (for the worker's metrics). Nothing here
keeps a raw identifier.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from services.core.covenant.model import Covenant
from services.core.decision import Decision, RuleRef
from services.core.errors import ConditionEvaluationError
from services.core.outcomes.entries import (
    PREMISES_KINDS,
    ApprovalEntry,
    OutcomeEntry,
    SignalEntry,
    rule_key,
)
from services.core.policy import LOCAL_TIME, Policy
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.core.signal import Signal

__all__ = ["Extractor", "Observed", "partner_kinds"]

Skip = Literal["not_covered", "no_location", "not_an_approver", "handover"]


@dataclass(frozen=True, slots=True)
class Observed:
    """What one signal adds: exactly one of the entries, or the reason it adds nothing."""

    signal: SignalEntry | None = None
    outcome: OutcomeEntry | None = None
    approval: ApprovalEntry | None = None
    skipped: Skip | None = None


def partner_kinds(covenants: Iterable[Covenant]) -> dict[str, str]:
    """Partner id -> kind, from the parties of the covenants (first version wins)."""
    kinds: dict[str, str] = {}
    for cov in sorted(covenants, key=lambda c: (c.covenant, c.version)):
        for party_id, party in cov.parties.items():
            kinds.setdefault(party_id, party.kind)
    return kinds


class Extractor:
    """Turns decided signals into store entries under one compiled policy."""

    def __init__(self, policy: Policy, pseudonymiser: Pseudonymiser) -> None:
        self._policy = policy
        self._pseudonym = pseudonymiser.pseudonym
        self._kinds = partner_kinds(policy.covenants)
        self._approvers = frozenset(
            plan.approval
            for plans in policy.return_plans.values()
            for plan in plans
            if plan.approval is not None
        )

    def observe(
        self,
        signal: Signal,
        decisions: Iterable[Decision],
        now: datetime,
        received: datetime | None = None,
    ) -> Observed:
        """``received``: when the hub received the signal (``now`` when not given)."""
        arrived = received if received is not None else now
        if signal.schema.approval:
            return self._approval(signal, arrived)
        if signal.schema.handover:  # a RIEC's hand-over: no indicator, no outcome
            return Observed(skipped="handover")
        return self._observe(signal, list(decisions), now, arrived)

    def _observe(
        self, signal: Signal, decided: list[Decision], now: datetime, arrived: datetime
    ) -> Observed:
        schema = signal.schema
        covered = [d.rule for d in decided if d.rule is not None]
        key = (signal.source, signal.type)
        keep = self._keep(key, now)
        if keep is None:  # no rule of a covenant in force decides or returns it
            return Observed(skipped="not_covered")
        locations = self._locations(signal)
        if not locations:
            return Observed(skipped="no_location")
        municipality = signal.data.get("municipality")
        place = municipality if isinstance(municipality, str) else None
        if schema.outcome is not None:
            outcome = self._outcome(signal, covered, locations, place, now, keep)
            return Observed(outcome=replace(outcome, received=arrived))
        if not covered:
            return Observed(skipped="not_covered")
        strength = signal.data.get(schema.strength_field) if schema.strength_field else None
        thread = signal.data.get("alert_id")
        return Observed(
            signal=SignalEntry(
                source=signal.source,
                signal_id=signal.id,
                signal_type=signal.type,
                time=signal.time,
                partner_kind=self._kinds.get(signal.source, "unknown"),
                municipality=place,
                strength=float(strength) if isinstance(strength, int | float) else None,
                stackable=self._policy.stacking_use(signal, now).rule is not None,
                thread=thread if isinstance(thread, str) else None,
                rules=tuple(
                    dict.fromkeys(
                        rule_key(d.rule) for d in decided if d.delivered and d.rule is not None
                    )
                ),
                keep_until=signal.time + keep,
                received=arrived,
                locations=locations,
            )
        )

    def _approval(self, signal: Signal, received: datetime) -> Observed:
        if signal.source not in self._approvers:
            return Observed(skipped="not_an_approver")
        data = signal.data
        return Observed(
            approval=ApprovalEntry(
                approver=signal.source,
                outcome_source=str(data["outcome_source"]),
                outcome_signal_id=str(data["outcome_signal_id"]),
                decision="approved" if data["decision"] == "approved" else "refused",
                signal_id=signal.id,
                time=signal.time,
                received=received,
            )
        )

    def _outcome(
        self,
        signal: Signal,
        covered: list[RuleRef],
        locations: tuple[str, ...],
        place: str | None,
        now: datetime,
        keep: timedelta,
    ) -> OutcomeEntry:
        day = now.astimezone(LOCAL_TIME).date()
        plans = [
            p
            for p in self._policy.return_plans.get((signal.source, signal.type), ())
            if p.covenant.in_force(day)
        ]
        applied: dict[str, RuleRef] = {}
        activation: dict[str, Any] | None = None
        for plan in plans:
            name = rule_key(plan.ref)
            if name in applied:
                continue
            if plan.condition is not None:
                if activation is None:
                    activation = {
                        "data": signal.data,
                        "source": signal.source,
                        "type": signal.type,
                        "time": signal.envelope.time.isoformat(),
                    }
                try:
                    if not plan.condition(activation):
                        continue
                except ConditionEvaluationError:
                    continue  # a condition that cannot be evaluated allows nothing
            applied[name] = plan.ref
        basis = next(iter(applied.values()), None) or (covered[0] if covered else None)
        fields = signal.schema.fields
        shareable = {
            name: value for name, value in signal.data.items() if not _sensitive_below(name, fields)
        }
        return OutcomeEntry(
            source=signal.source,
            signal_id=signal.id,
            signal_type=signal.type,
            outcome_class=signal.schema.outcome or "measure",
            time=signal.time,
            municipality=place,
            data=shareable,
            leaves=signal.leaf_paths(),
            subjects=self._subjects(signal),
            rules=tuple(applied),
            basis=basis,
            keep_until=signal.time + keep,
            locations=locations,
        )

    def _locations(self, signal: Signal) -> tuple[str, ...]:
        kinds = signal.schema.identifier_kinds
        found: list[str] = []
        for path in signal.schema.location_fields:
            kind = kinds.get(path)
            value = signal.identifiers.get(path)
            if kind in PREMISES_KINDS and value is not None:
                found.append(self._pseudonym(INTERNAL, kind, value))
        return tuple(dict.fromkeys(found))

    def _subjects(self, signal: Signal) -> dict[str, str]:
        kinds = signal.schema.identifier_kinds
        return {
            path: self._pseudonym(INTERNAL, kinds[path], value)
            for path, value in signal.identifiers.items()
            if path in kinds
        }

    def _keep(self, key: tuple[str, str], now: datetime) -> timedelta | None:
        """The longest retention of a rule in force that decides or returns ``key`` (None:
        no such rule): the index keeps an entry no longer than a recipient may keep what it
        was told about it."""
        day = now.astimezone(LOCAL_TIME).date()
        days = [
            p.retention_days for p in self._policy.index.get(key, ()) if p.covenant.in_force(day)
        ]
        days += [
            p.retention_days
            for p in self._policy.return_plans.get(key, ())
            if p.covenant.in_force(day)
        ]
        return timedelta(days=max(days)) if days else None


def _sensitive_below(name: str, fields: Mapping[str, Any]) -> bool:
    """Whether the top-level field ``name`` is, or holds, an identifier or personal data."""
    prefix = name + "."
    return any(
        info.sensitive for path, info in fields.items() if path == name or path.startswith(prefix)
    )
