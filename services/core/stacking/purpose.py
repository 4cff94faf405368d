"""Which covenant rule lets the hub stack a signal, and the audit record of that use.

A signal is used for stacking only when a rule of a covenant version in force on the day it is
processed names its source and type with ``stacking: true``. Every such use is audited as its
own record (action ``use``, recipient :data:`STACKING_USE`), naming that rule and the stacking
purpose, with the location's hub-internal pseudonyms as subjects — so a privacy officer sees
per subject that a signal was stacked, and under which covenant article.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Final

from services.core.covenant.model import Covenant
from services.core.decision import RuleRef, exchange_id

__all__ = ["ACTOR", "STACKING_USE", "StackingRules", "use_record"]

STACKING_USE: Final = "hub:stacking"
"""The recipient column of a stacking-use record: the hub itself (never a partner id)."""
ACTOR: Final = "schakel-stacking"


class StackingRules:
    """Finds the rule allowing stacking of a (source, type) on a day (cached per day)."""

    def __init__(self, covenants: Iterable[Covenant], purpose: str) -> None:
        self._covenants = sorted(covenants, key=lambda c: (c.covenant, c.version))
        self._purpose = purpose
        self._day: date | None = None
        self._cache: dict[tuple[str, str], RuleRef | None] = {}
        self.partner_kinds: Mapping[str, str] = _partner_kinds(self._covenants)

    def rule_for(self, source: str, signal_type: str, day: date) -> RuleRef | None:
        if day != self._day:
            self._day, self._cache = day, {}
        key = (source, signal_type)
        if key not in self._cache:
            self._cache[key] = self._find(source, signal_type, day)
        return self._cache[key]

    def _find(self, source: str, signal_type: str, day: date) -> RuleRef | None:
        for cov in self._covenants:
            if not cov.in_force(day):
                continue
            for rule in cov.rules:
                if rule.stacking and source in rule.from_ and signal_type in rule.types:
                    return RuleRef(cov.covenant, cov.version, rule.id, rule.article, self._purpose)
        return None


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
