"""The measured effect of a barrier: counts for one municipality in one calendar quarter.

Signals and reports come from coverage facts, released per signal type with complementary
suppression against the coverage page (:mod:`services.core.coverage.by_type`); findings from
the outcome index (issue 13). Cells are whole calendar quarters, the same whatever barrier
asks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Engine, func, inspect, select

from services.core.coverage.by_type import release_by_type
from services.core.coverage.facts import category_of
from services.database.tables.coverage import coverage_facts
from services.database.tables.outcomes import outcome_events
from services.outcomes.rows import to_us


@dataclass(frozen=True, slots=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def of(cls, day: date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    def shifted(self, by: int) -> Quarter:
        index = self.year * 4 + self.number - 1 + by
        return Quarter(index // 4, index % 4 + 1)

    @property
    def months(self) -> tuple[str, ...]:
        first = (self.number - 1) * 3 + 1
        return tuple(f"{self.year}-{m:02d}" for m in range(first, first + 3))

    @property
    def start(self) -> datetime:
        return datetime(self.year, (self.number - 1) * 3 + 1, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year}-Q{self.number}"


@dataclass(frozen=True, slots=True)
class Cell:
    """One quarter's counts; ``None`` is suppressed (below the threshold)."""

    quarter: Quarter
    offset: int
    """Quarters after the one the barrier was raised in (negative: before)."""
    counts: Mapping[str, int | None]
    complete: bool
    """Whether the quarter is over; one in progress releases no count (every one ``None``)."""
    types: Mapping[str, int | None] = field(default_factory=dict)
    """The released count of each signal type informing the step (``None``: suppressed);
    ``signals`` is the sum of these."""
    report_types: Mapping[str, int | None] = field(default_factory=dict)
    """The released count of each report type; ``reports`` is the sum of these."""


def released_types(
    engine: Engine, municipality: str, quarter: Quarter, threshold: int
) -> dict[str, int]:
    """The quarter's released counts per signal type in ``municipality``
    (:mod:`services.core.coverage.by_type`); a type left out is suppressed."""
    if not inspect(engine).has_table("coverage_facts"):
        return {}
    facts = coverage_facts.c
    statement = (
        select(facts.signal_type, facts.month, facts.category, func.count())
        .where(facts.municipality == municipality, facts.month.in_(quarter.months))
        .group_by(facts.signal_type, facts.month, facts.category)
    )
    per_type: Counter[str] = Counter()
    per_month: Counter[tuple[str, str]] = Counter()
    with engine.connect() as connection:
        for signal_type, month, category, count in connection.execute(statement):
            per_type[signal_type] += int(count)
            per_month[(month, category)] += int(count)

    def months(category: str) -> list[int]:
        return [per_month[(m, category)] for m in quarter.months]

    return release_by_type(per_type, category_of, months, threshold)


def findings_in(engine: Engine, municipality: str, quarter: Quarter) -> int:
    """Positive findings at a location in ``municipality`` in the quarter (true count:
    the caller suppresses it)."""
    if not inspect(engine).has_table("outcome_events"):
        return 0
    events = outcome_events.c
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(
                    events.municipality == municipality,
                    events.outcome_class == "finding",
                    events.time_us >= to_us(quarter.start),
                    events.time_us < to_us(quarter.shifted(1).start),
                )
            ).scalar_one()
        )
