"""Which covenant rule lets the hub stack a signal, and the audit record of that use.

A signal is used for stacking only when a rule of a covenant version in force on the day it is
processed names its source and type with ``stacking: true`` *and* that rule's condition is met
for the signal (:meth:`services.core.policy.Policy.stacking_use` — the same evaluation as a
delivery), so a signal outside a rule's region is never stacked. Every such use is audited as its
own record (action ``use``, recipient :data:`STACKING_USE`), naming that rule and the stacking
purpose, with the location's hub-internal pseudonyms as subjects — so a privacy officer sees
per subject that a signal was stacked, and under which covenant article.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, Final

from services.core.covenant.model import Covenant
from services.core.decision import RuleRef, exchange_id
from services.core.policy import Policy, StackingUse
from services.core.signal import Signal

__all__ = ["ACTOR", "STACKING_USE", "StackingRules", "use_record"]

STACKING_USE: Final = "hub:stacking"
"""The recipient column of a stacking-use record: the hub itself (never a partner id)."""
ACTOR: Final = "schakel-stacking"


class StackingRules:
    """Finds the rule that lets the hub stack one signal, citing it under the stacking purpose."""

    def __init__(self, policy: Policy, purpose: str) -> None:
        self._policy = policy
        self._purpose = purpose
        covenants = sorted(policy.covenants, key=lambda c: (c.covenant, c.version))
        self.partner_kinds: Mapping[str, str] = _partner_kinds(covenants)

    def use(self, signal: Signal, now: datetime) -> StackingUse:
        """The rule (its purpose replaced by the stacking purpose), or why none applies."""
        found = self._policy.stacking_use(signal, now)
        if found.rule is None:
            return found
        return StackingUse(replace(found.rule, purpose=self._purpose))

    def rule_for(self, signal: Signal, now: datetime) -> RuleRef | None:
        return self.use(signal, now).rule


def _partner_kinds(covenants: Iterable[Covenant]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for cov in covenants:
        for party_id, party in cov.parties.items():
            kinds.setdefault(party_id, party.kind)
    return kinds


def use_record(
    *,
    source: str,
    signal_id: str,
    signal_type: str,
    rule: RuleRef,
    subjects: Mapping[str, str],
    fields: Iterable[str],
    now: datetime,
) -> dict[str, Any]:
    """The audit record of using one signal for stacking (same shape as a routing record)."""
    return {
        "record_id": exchange_id(source, signal_id, STACKING_USE),
        "action": "use",
        "result": "stacked",
        "object": signal_type,
        "signal_id": signal_id,
        "origin": source,
        "recipient": STACKING_USE,
        "actor": ACTOR,
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "processing_activity": rule.purpose,
        "trace_id": signal_id,
        "covenant": rule.as_dict(),
        "fields": dict.fromkeys(fields, "internal-pseudonym"),
        "withheld_fields": [],
        "pseudonyms": {},
        "subjects": dict(subjects),
        "reason": None,
        "retention_days": None,
        "reidentify": False,
    }
