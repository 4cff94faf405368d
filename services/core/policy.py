"""The compiled policy: a pure function from (signal, now) to one decision per recipient.

Deny by default: a recipient only receives what a rule in force allows, with only the fields
that rule shares; everything else is withheld, and each withholding is a decision too.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from services.core.covenant.condition import CompiledCondition
from services.core.covenant.envelope_spec import DEFAULT_PLAN, EnvelopePlan
from services.core.covenant.keyring import Keyring
from services.core.covenant.model import Covenant
from services.core.covenant.validity import recency, refusal
from services.core.decision import NO_RECIPIENT, Decision, RuleRef, exchange_id
from services.core.errors import ConditionEvaluationError
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.core.signal import Signal

LOCAL_TIME = ZoneInfo("Europe/Amsterdam")
"""Covenant validity dates are Dutch calendar days."""


@dataclass(frozen=True, slots=True)
class FieldStep:
    """How one shared field is produced for one recipient."""

    path: tuple[str, ...]
    dotted: str
    spec: str
    apply: Callable[[Any], Any] | None  # None: keep as is
    pseudonym: bool
    flat: bool
    """A top-level field (the common case: read without walking a path)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One rule of one covenant version for one signal type and one recipient."""

    ref: RuleRef
    covenant: Covenant = field(repr=False)
    rule_key: tuple[str, str]
    recipient: str
    condition: CompiledCondition | None = field(repr=False)
    steps: tuple[FieldStep, ...] = field(repr=False)
    shared: frozenset[str] = field(repr=False)
    retention_days: int
    reidentify: bool
    envelope: EnvelopePlan = field(default=DEFAULT_PLAN, repr=False)
    """What the recipient gets of the envelope (time, source; the keyed exchange id, type)."""
    refusal: str | None = None
    """Set when this plan may never deliver (its recipient receives aggregates only): the
    reason its decisions are withheld with, even if a covenant slipped past the checker."""
    withheld_cache: dict[tuple[str, ...], tuple[str, ...]] = field(
        default_factory=dict, repr=False, compare=False
    )
    """Fields this plan withholds, per shape of signal data (the set of paths present)."""


@dataclass(frozen=True, slots=True)
class StackingPlan:
    """One rule of one covenant version that lets the hub use a (source, type) for stacking."""

    ref: RuleRef
    covenant: Covenant = field(repr=False)
    rule_key: tuple[str, str]
    condition: CompiledCondition | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class ReturnPlan:
    """One rule with ``return_to`` for one outcome type and one recipient (docs/outcomes.md).

    Decided by the outcomes worker (services/outcomes), never by the router: the recipient is
    told about an outcome only when it signalled the same location earlier, and then only
    which of its own signals the outcome answers (:mod:`services.core.outcomes.returns`).
    """

    ref: RuleRef
    covenant: Covenant = field(repr=False)
    rule_key: tuple[str, str]
    recipient: str
    condition: CompiledCondition | None = field(repr=False)
    steps: tuple[FieldStep, ...] = field(repr=False)
    shared: frozenset[str] = field(repr=False)
    retention_days: int
    envelope: EnvelopePlan = field(repr=False)
    within: timedelta
    """How long before the outcome an answered signal may lie (``match.within``)."""
    match_types: frozenset[str] | None
    """The recipient's signal types the outcome answers (None: all of them)."""
    approval: str | None
    """The approver party whose per-case approval the return waits for, if any."""


@dataclass(frozen=True, slots=True)
class StackingUse:
    """Whether the hub may stack one signal: the rule that allows it, or why not."""

    rule: RuleRef | None
    reason: str | None = None
    """``not_for_stacking``, ``rule_not_in_force`` or ``condition_not_met`` when ``rule`` is None."""


_MISSING = object()


@dataclass(frozen=True)
class Policy:
    """Compiled covenants. Build it with :func:`services.core.covenant.compiler.compile_policy`."""

    index: Mapping[tuple[str, str], tuple[Plan, ...]]
    pseudonymiser: Pseudonymiser = field(repr=False)
    covenants: tuple[Covenant, ...] = field(repr=False)
    suppliers: frozenset[str] = frozenset()
    recipients: frozenset[str] = frozenset()
    stacking: Collection[tuple[str, str]] = frozenset()
    """(source, type) pairs some rule allows the hub to use for stacking (a cheap pre-filter;
    :meth:`stacking_use` decides, conditions and validity included)."""
    stacking_plans: Mapping[tuple[str, str], tuple[StackingPlan, ...]] = field(
        default_factory=dict, repr=False
    )
    """The rules with ``stacking: true`` per (source, type), in decision order."""
    keyring: Keyring | None = field(default=None, repr=False, compare=False)
    """The partners' signing keys (the compiler sets it; None: built from ``covenants``)."""
    return_plans: Mapping[tuple[str, str], tuple[ReturnPlan, ...]] = field(
        default_factory=dict, repr=False
    )
    """Rules with ``return_to`` per (outcome source, outcome type), in decision order; the
    outcomes worker decides them (services/outcomes)."""
    hub_only: frozenset[tuple[str, str]] = frozenset()
    """(source, type) pairs that only the outcomes worker decides — outcomes no ``to`` rule
    routes, and the approvals of an approver — so the router records no decision of its own."""
    _by_day: dict[date, Mapping[tuple[str, str], tuple[Plan, ...]]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _last_day: list[tuple[datetime | None, date | None]] = field(
        default_factory=lambda: [(None, None)], init=False, repr=False, compare=False
    )
    """The last (now, its Dutch calendar day): a batch decides many signals at one ``now``."""

    def decide(self, signal: Signal, now: datetime) -> list[Decision]:
        """One decision per recipient any rule names for this source and type, in recipient order.

        When no rule at all covers the (source, type), a single withheld decision with recipient
        ``-`` records that nothing was allowed.
        """
        subjects = self._subjects(signal)
        key = (signal.source, signal.type)
        plans = self.index.get(key)
        if not plans:
            if key in self.hub_only:  # the outcomes worker decides and audits it
                return []
            return [self._uncovered(signal, now, subjects)]
        day = self._day(now)
        in_force = self._in_force(day).get(key, ())
        activation: dict[str, Any] | None = None
        conditions: dict[tuple[str, str], str | None] = {}
        decided: dict[str, Decision] = {}
        refusals: dict[str, tuple[Plan, str]] = {}
        leaves = signal.leaf_paths()
        for plan in in_force:
            if plan.recipient in decided:
                continue
            refusal = plan.refusal  # set only for a recipient that receives aggregates only
            if refusal is None and plan.condition is not None:
                if activation is None:  # built once, and only when some rule has a condition
                    activation = _activation(signal)
                refusal = _condition_refusal(plan, activation, conditions)
            if refusal is not None:
                refusals.setdefault(plan.recipient, (plan, refusal))
                continue
            decided[plan.recipient] = self._deliver(plan, signal, now, subjects, leaves)
        if len(decided) < len(plans):
            # recipients only a covenant out of force names: withheld, saying why (expired, ...)
            for plan in _last_applied(plans, day, skip=decided.keys() | refusals.keys()):
                refusals[plan.recipient] = (plan, _validity_refusal(plan.covenant, day))
            for recipient, (plan, reason) in refusals.items():
                if recipient not in decided:
                    decided[recipient] = Decision(
                        exchange_id=exchange_id(signal.source, signal.id, recipient),
                        signal_id=signal.id,
                        source=signal.source,
                        signal_type=signal.type,
                        recipient=recipient,
                        result="withheld",
                        decided_at=now,
                        rule=plan.ref,
                        reason=reason,
                        withheld_fields=leaves,
                        subjects=subjects,
                    )
        if len(decided) == 1:
            return list(decided.values())
        return [decided[r] for r in sorted(decided)]

    def _subjects(self, signal: Signal) -> dict[str, str]:
        """Hub-internal pseudonym of every identifier in the signal, by dotted path."""
        subjects: dict[str, str] = {}
        if signal.identifiers:
            kinds = signal.schema.identifier_kinds
            pseudonym = self.pseudonymiser.pseudonym
            for path, canonical in signal.identifiers.items():
                kind = kinds.get(path)
                if kind is not None:
                    subjects[path] = pseudonym(INTERNAL, kind, canonical)
        return subjects

    def _day(self, now: datetime) -> date:
        """The Dutch calendar day of ``now``, remembered for the same ``now`` object."""
        last_now, last_day = self._last_day[0]
        if last_now is now and last_day is not None:
            return last_day
        day = now.astimezone(LOCAL_TIME).date()
        self._last_day[0] = (now, day)  # one tuple, so readers never see half an update
        return day

    def _uncovered(self, signal: Signal, now: datetime, subjects: Mapping[str, str]) -> Decision:
        return Decision(
            exchange_id=exchange_id(signal.source, signal.id, NO_RECIPIENT),
            signal_id=signal.id,
            source=signal.source,
            signal_type=signal.type,
            recipient=NO_RECIPIENT,
            result="withheld",
            decided_at=now,
            rule=None,
            reason=f"no covenant rule allows {signal.type} from {signal.source}",
            withheld_fields=signal.leaf_paths(),
            subjects=subjects,
        )

    def _in_force(self, day: date) -> Mapping[tuple[str, str], tuple[Plan, ...]]:
        """The index restricted to covenant versions in force on ``day`` (cached per day)."""
        cached = self._by_day.get(day)
        if cached is None:
            cached = {
                key: kept
                for key, plans in self.index.items()
                if (kept := tuple(p for p in plans if p.covenant.in_force(day)))
            }
            if len(self._by_day) >= 4:
                self._by_day.clear()
            self._by_day[day] = cached
        return cached

    def _deliver(
        self,
        plan: Plan,
        signal: Signal,
        now: datetime,
        subjects: Mapping[str, str],
        leaves: tuple[str, ...],
    ) -> Decision:
        payload: dict[str, Any] = {}
        disclosed: dict[str, str] = {}
        pseudonyms: dict[str, str] = {}
        data = signal.data
        for step in plan.steps:
            if step.flat:
                value = data.get(step.dotted, _MISSING)
                if value is _MISSING:
                    continue
                if step.apply is not None:
                    value = step.apply(value)
                payload[step.dotted] = value
            else:
                value = _get(data, step.path)
                if value is _MISSING:
                    continue
                if step.apply is not None:
                    value = step.apply(value)
                _put(payload, step.path, value)
            disclosed[step.dotted] = step.spec
            if step.pseudonym:
                pseudonyms[step.dotted] = value
        envelope = plan.envelope
        disclosed.update(envelope.disclosed)
        withheld = plan.withheld_cache.get(leaves)
        if withheld is None:
            withheld = tuple(p for p in leaves if not _covered(p, plan.shared))
            withheld += envelope.withheld
            if len(plan.withheld_cache) < 256:  # signals of one type have few field shapes
                plan.withheld_cache[leaves] = withheld
        exchange = exchange_id(signal.source, signal.id, plan.recipient)
        values: dict[str, Any] = {
            "exchange_id": self.pseudonymiser.exchange_token(exchange),
            "type": signal.type,
        }
        if envelope.source:
            values["source"] = signal.source
        if envelope.time is not None:
            values["time"] = envelope.time(_iso(signal.time))
        return Decision(
            exchange_id=exchange,
            signal_id=signal.id,
            source=signal.source,
            signal_type=signal.type,
            recipient=plan.recipient,
            result="delivered",
            decided_at=now,
            rule=plan.ref,
            payload=payload,
            disclosed=disclosed,
            withheld_fields=withheld,
            pseudonyms=pseudonyms,
            subjects=subjects,
            retention_days=plan.retention_days,
            reidentify=plan.reidentify,
            envelope=values,
        )

    def allows_stacking(self, signal: Signal) -> bool:
        """Whether any rule names this (source, type) for stacking (validity and conditions
        aside: :meth:`stacking_use` decides whether this signal may be used)."""
        return (signal.source, signal.type) in self.stacking

    def stacking_use(self, signal: Signal, now: datetime) -> StackingUse:
        """The first rule (in decision order) that lets the hub stack this signal at ``now``.

        A rule counts only when its covenant version is in force and its condition is met for
        this signal — exactly as for a delivery — so a signal outside a rule's region is never
        stacked under that rule, and the audit record of a use cites a rule that applied.
        """
        plans = self.stacking_plans.get((signal.source, signal.type))
        if not plans:
            return StackingUse(None, "not_for_stacking")
        day = self._day(now)
        in_force = [plan for plan in plans if plan.covenant.in_force(day)]
        if not in_force:
            return StackingUse(None, "rule_not_in_force")
        activation: dict[str, Any] | None = None
        for plan in in_force:
            if plan.condition is not None:
                if activation is None:
                    activation = _activation(signal)
                try:
                    met = plan.condition(activation)
                except ConditionEvaluationError:
                    met = False  # a condition that cannot be evaluated allows nothing
                if not met:
                    continue
            return StackingUse(plan.ref)
        return StackingUse(None, "condition_not_met")

    def in_force(self, now: datetime) -> list[Covenant]:
        """The covenant versions in force at ``now``."""
        day = now.astimezone(LOCAL_TIME).date()
        return [c for c in self.covenants if c.in_force(day)]


def _last_applied(plans: tuple[Plan, ...], day: date, *, skip: Collection[str]) -> list[Plan]:
    """Per recipient not in ``skip``, the plan of the covenant version that applied most
    recently before ``day`` (or applies next): the one a refusal cites, whatever the order."""
    latest: dict[str, Plan] = {}
    for plan in plans:
        if plan.recipient in skip:
            continue
        known = latest.get(plan.recipient)
        if known is None or recency(plan.covenant, day) > recency(known.covenant, day):
            latest[plan.recipient] = plan
    return list(latest.values())


def _validity_refusal(cov: Covenant, day: date) -> str:
    """Why a covenant version out of force allows nothing on ``day``."""
    return refusal(cov, day)


def _activation(signal: Signal) -> dict[str, Any]:
    """What a rule's condition can read of a signal."""
    return {
        "data": signal.data,
        "source": signal.source,
        "type": signal.type,
        "time": signal.envelope.time.isoformat(),
    }


def _condition_refusal(
    plan: Plan,
    activation: Mapping[str, Any],
    conditions: dict[tuple[str, str], str | None],
) -> str | None:
    """Why this plan's condition keeps it from delivering, or None when it delivers.

    A rule's condition is evaluated once per signal however many recipients it names.
    """
    if plan.condition is None:
        return None
    if plan.rule_key not in conditions:
        try:
            met = plan.condition(activation)
        except ConditionEvaluationError as exc:
            conditions[plan.rule_key] = (
                f"condition of rule {plan.ref.rule_id} could not be evaluated: {exc}"
            )
        else:
            conditions[plan.rule_key] = (
                None if met else f"condition of rule {plan.ref.rule_id} not met"
            )
    return conditions[plan.rule_key]


@lru_cache(maxsize=4096)
def _iso(moment: datetime) -> str:
    """RFC 3339 text of a signal's time; cached, as each recipient of a signal asks again."""
    return moment.isoformat().replace("+00:00", "Z")


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for part in path:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(part, _MISSING)
        if value is _MISSING:
            return _MISSING
    return value


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value


def _covered(path: str, shared: frozenset[str]) -> bool:
    if path in shared:
        return True
    while "." in path:
        path = path.rsplit(".", 1)[0]
        if path in shared:
            return True
    return False
