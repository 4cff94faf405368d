"""The released view of coverage counts: small counts suppressed, totals that cannot undo it.

Counts are kept per cell — municipality x month x category (reports, indicators). A cell below
the threshold (default 5, zero included) is released as ``None`` ("fewer than 5"). Every
other number released — a month's total, the province ratio, the report-gap ranking — is
computed **from released cells only**, never from the true counts. So any two count tables
that differ only in suppressed cells give exactly the same release, for every month range a
query asks: no difference between two releases (a month total minus the other
municipalities, two overlapping month ranges) can reveal a suppressed count. Totals are
therefore "of the published counts" and say so.

A month **in progress** releases nothing: its counts grow day by day, so two days' pages would
differ by the signals of one day — a count of 1 or 2, exactly what suppression hides. Its
cells are withheld (``None``) and left out of every total until the month is over
(:func:`in_progress`); the barrier plan withholds its current quarter likewise.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from services.core.coverage.errors import CoverageError
from services.core.coverage.facts import CATEGORIES, Category, month_of

DEFAULT_THRESHOLD: Final = 5

CellKey = tuple[str, str, Category]
"""(municipality, month, category)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One municipality in one month; ``None`` means suppressed (fewer than the threshold)."""

    municipality: str
    name: str
    month: str
    reports: int | None
    indicators: int | None


@dataclass(frozen=True, slots=True)
class MonthTotal:
    """Sums of the *published* cells of one month (suppressed cells left out)."""

    month: str
    reports: int
    indicators: int


@dataclass(frozen=True, slots=True)
class Release:
    threshold: int
    months: tuple[str, ...]
    rows: tuple[Row, ...]
    """Every known municipality for every month, municipality order as given."""
    totals: tuple[MonthTotal, ...]
    in_progress: tuple[str, ...] = ()
    """Months not over yet: every cell withheld (``None``), nothing in the totals."""

    def rows_of(self, month: str) -> list[Row]:
        return [row for row in self.rows if row.month == month]

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "note": f"counts below {self.threshold} are suppressed (null); totals are sums of "
            "the published counts only; a month in progress releases no count (null) until it "
            "is over",
            "months": list(self.months),
            "in_progress": list(self.in_progress),
            "rows": [
                {
                    "month": r.month,
                    "municipality": r.municipality,
                    "name": r.name,
                    "reports": r.reports,
                    "indicators": r.indicators,
                }
                for r in self.rows
            ],
            "totals": [
                {"month": t.month, "reports": t.reports, "indicators": t.indicators}
                for t in self.totals
            ],
        }


def release(
    counts: Mapping[CellKey, int],
    municipalities: Sequence[tuple[str, str]],
    months: Sequence[str],
    threshold: int = DEFAULT_THRESHOLD,
    in_progress: Collection[str] = (),
) -> Release:
    """The release of ``counts`` for ``months`` over ``municipalities`` (code, name); the
    months ``in_progress`` (:func:`in_progress`) release no count.

    Counts of municipalities not listed are left out (they are not part of the release).
    """
    if threshold < 1:
        raise CoverageError(f"threshold {threshold} is below 1. Fix: use 1 or more (default 5).")

    def shown(code: str, month: str, category: Category) -> int | None:
        if month in in_progress:
            return None
        count = counts.get((code, month, category), 0)
        return count if count >= threshold else None

    rows = tuple(
        Row(code, name, month, shown(code, month, "reports"), shown(code, month, "indicators"))
        for month in months
        for code, name in municipalities
    )
    totals = tuple(
        MonthTotal(
            month,
            sum(r.reports or 0 for r in rows if r.month == month),
            sum(r.indicators or 0 for r in rows if r.month == month),
        )
        for month in months
    )
    still = tuple(m for m in months if m in in_progress)
    return Release(threshold, tuple(months), rows, totals, still)


def in_progress(months: Sequence[str], today: date) -> tuple[str, ...]:
    """The ``months`` not over on ``today`` (this month and any later one)."""
    current = month_of(today.year, today.month)
    return tuple(m for m in months if m >= current)


@dataclass(frozen=True, slots=True)
class Gap:
    """One municipality in the report-gap ranking of a month."""

    rank: int
    municipality: str
    name: str
    reports: int | None
    indicators: int
    expected_reports: float
    gap: float


def report_gap(published: Release, month: str) -> list[Gap]:
    """Where indicators are high but few people report, largest gap first.

    Expected reports = the municipality's published indicators x the month's ratio of
    published reports to published indicators; the gap is expected minus reported (a
    suppressed report count counts as 0, so the gap is an upper bound). Municipalities whose
    indicators are suppressed are not ranked. Uses released numbers only.
    """
    if month not in published.months:
        raise CoverageError(f"month {month} is not in this release. Fix: query that month.")
    total = next(t for t in published.totals if t.month == month)
    ratio = total.reports / total.indicators if total.indicators else 0.0
    ranked: list[tuple[float, int, Row]] = []
    for row in published.rows_of(month):
        if row.indicators is None:
            continue
        expected = row.indicators * ratio
        ranked.append((expected - (row.reports or 0), row.indicators, row))
    ranked.sort(key=lambda item: (-item[0], -item[1], item[2].municipality))
    return [
        Gap(
            rank=index + 1,
            municipality=row.municipality,
            name=row.name,
            reports=row.reports,
            indicators=indicators,
            expected_reports=round(indicators * ratio, 2),
            gap=round(gap, 2),
        )
        for index, (gap, indicators, row) in enumerate(ranked)
    ]


def gap_json(gaps: Sequence[Gap]) -> list[dict[str, Any]]:
    return [
        {
            "rank": g.rank,
            "municipality": g.municipality,
            "name": g.name,
            "reports": g.reports,
            "indicators": g.indicators,
            "expected_reports": g.expected_reports,
            "gap": g.gap,
        }
        for g in gaps
    ]


__all__ = [
    "CATEGORIES",
    "DEFAULT_THRESHOLD",
    "CoverageError",
    "Release",
    "in_progress",
    "release",
    "report_gap",
]
