"""One coverage query, the same for the CLI and the web page: a month's release and ranking,
and the months before it for the trend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.core.coverage.facts import month_of, months_until
from services.core.coverage.release import (
    DEFAULT_THRESHOLD,
    Gap,
    Release,
    gap_json,
    release,
    report_gap,
)
from services.core.regions import ReferenceData
from services.coverage.store import CoverageStore

TREND_MONTHS = 12


@dataclass(frozen=True)
class CoverageView:
    month: str
    release: Release
    """``TREND_MONTHS`` months ending with ``month``."""
    ranking: list[Gap]

    def to_json(self) -> dict[str, Any]:
        return {"month": self.month, "ranking": gap_json(self.ranking), **self.release.to_json()}


def municipalities(reference: ReferenceData) -> list[tuple[str, str]]:
    """(code, name) of every municipality of the reference data, by code."""
    return sorted((code, m.name) for code, m in reference.municipalities.items())


def coverage_view(
    store: CoverageStore,
    known: Sequence[tuple[str, str]],
    *,
    month: str | None,
    today: date,
    threshold: int = DEFAULT_THRESHOLD,
    trend_months: int = TREND_MONTHS,
) -> CoverageView:
    """``month`` (default: the newest month with facts, else this month) and its trend."""
    if month is None:
        stored = store.months()
        month = stored[-1] if stored else month_of(today.year, today.month)
    months = months_until(month, trend_months)
    published = release(store.counts(months), known, months, threshold)
    return CoverageView(month, published, report_gap(published, month))
