"""One coverage query, the same for the CLI and the web page: a month's release and ranking,
and the months before it for the trend. A month not over yet releases no count (its figures
grow day by day: comparing two days would give one day's signals away); shown unasked is the
newest month that is over."""

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
    in_progress,
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
    chosen: str = "the month asked for"
    """Why this month is shown (said next to it: the default is not always the newest)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "month_chosen": self.chosen,
            "ranking": gap_json(self.ranking),
            **self.release.to_json(),
        }


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
    """``month`` (default: :func:`default_month`) and its trend."""
    chosen = "the month asked for"
    if month is None:
        month, chosen = default_month(store, known, today=today, threshold=threshold)
    months = months_until(month, trend_months)
    still = in_progress(months, today)
    published = release(store.counts(months), known, months, threshold, still)
    if month in still:
        chosen += (
            f"; {month} is not over yet, so none of its counts is released: they grow day by "
            "day, and comparing two days would give one day's signals away"
        )
    return CoverageView(month, published, report_gap(published, month), chosen)


def default_month(
    store: CoverageStore, known: Sequence[tuple[str, str]], *, today: date, threshold: int
) -> tuple[str, str]:
    """The month to show unasked, and why: the newest month that is over with a count at or
    above the threshold, else the newest that is over with any fact, else this month (in
    progress: nothing of it is released)."""
    current = month_of(today.year, today.month)
    every = store.months()
    stored = [m for m in every if m < current]
    ongoing = (
        f"; {current} is in progress: none of its counts is released until it is over"
        if len(stored) < len(every)
        else ""
    )
    for index in range(len(stored) - 1, -1, -1):
        month = stored[index]
        totals = release(store.counts([month]), known, [month], threshold).totals
        if any(t.reports or t.indicators for t in totals):
            why = "the newest month with published counts"
            newer = stored[index + 1 :]
            if newer:
                why += (
                    f"; {', '.join(newer)} {'has' if len(newer) == 1 else 'have'} every count "
                    f"below {threshold} so far"
                )
            return month, why + ongoing
    if stored:
        return (
            stored[-1],
            f"the newest month with data; every count in it is below {threshold}{ongoing}",
        )
    return current, "this month; nothing is counted yet" if not every else "this month"
