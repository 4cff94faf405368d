"""What coverage counts of one signal: its month, municipality and category — nothing else.

A *fact* is taken from a signal the router accepted and a covenant rule in force covers (any
decision naming a rule, delivered or withheld), so coverage counts only what the hub may
lawfully process. It holds no identifier: the signal id and source make counting idempotent,
the municipality is a CBS code, the month is ``YYYY-MM`` (UTC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from typing import Final, Literal

from services.core.coverage.errors import CoverageError
from services.core.pipeline import Outcome

Category = Literal["reports", "indicators"]
CATEGORIES: Final[tuple[Category, ...]] = ("reports", "indicators")

CATEGORY_OF_KIND: Final[dict[str, Category]] = {
    # people and businesses who report what they saw or were asked
    "residents": "reports",  # anonymous tips (NH Drugsalert, Meld Misdaad Anoniem)
    "rural": "reports",  # farmers reporting an approach to rent a barn (Schimmige Schuren)
    "chemicals": "reports",  # traders reporting an unusual precursor sale
    # what utilities and landlords measure or find
    "energy": "indicators",
    "water": "indicators",
    "waste": "indicators",
    "housing": "indicators",
}
"""Category by the partner kind a signal type starts with; other kinds (the hub's own stacked
alerts, which repeat their inputs) are not counted."""

MUNICIPALITY: Final = re.compile(r"^GM[0-9]{4}$")
MONTH: Final = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class Fact:
    """One counted signal."""

    origin: str
    signal_id: str
    month: str
    municipality: str
    signal_type: str
    category: Category


def category_of(signal_type: str) -> Category | None:
    return CATEGORY_OF_KIND.get(signal_type.split(".", 1)[0])


def fact_of(outcome: Outcome) -> Fact | None:
    """The fact of a routed signal, or ``None`` when coverage does not count it (rejected, no
    rule in force covers it, not a counted kind, no municipality)."""
    signal = outcome.signal
    if signal is None or not any(d.rule is not None for d in outcome.decisions):
        return None
    if signal.schema.outcome is not None or signal.schema.approval or signal.schema.handover:
        return None  # what came of earlier signals (docs/outcomes.md), not a report or indicator
    category = category_of(signal.type)
    municipality = signal.data.get("municipality")
    if (
        category is None
        or not isinstance(municipality, str)
        or not MUNICIPALITY.match(municipality)
    ):
        return None
    moment = signal.time.astimezone(UTC)
    return Fact(
        origin=signal.source,
        signal_id=signal.id,
        month=month_of(moment.year, moment.month),
        municipality=municipality,
        signal_type=signal.type,
        category=category,
    )


def month_of(year: int, month: int) -> str:
    return f"{year:04d}-{month:02d}"


def months_until(last: str, count: int) -> tuple[str, ...]:
    """``count`` months ending with ``last`` (``YYYY-MM``), oldest first."""
    if not MONTH.match(last):
        raise CoverageError(f"month {last!r} is not YYYY-MM. Fix: write e.g. 2026-09.")
    year, month = int(last[:4]), int(last[5:])
    index = year * 12 + month - 1 - (count - 1)
    return tuple(month_of(i // 12, i % 12 + 1) for i in range(index, index + count))
