"""Which month coverage shows when none is asked for, and that it says so."""

from __future__ import annotations

from datetime import date

import pytest

from services.core.coverage.facts import Fact
from services.coverage.testing import MemoryCoverageStore
from services.coverage.view import coverage_view

KNOWN = [("GM0361", "Alkmaar"), ("GM0392", "Haarlem")]
TODAY = date(2026, 12, 6)

pytestmark = pytest.mark.timeout(30)


def facts(month: str, count: int, prefix: str) -> list[Fact]:
    return [
        Fact("p", f"{prefix}{n}", month, "GM0361", "energy.x.v1", "indicators")
        for n in range(count)
    ]


def test_the_newest_month_with_published_counts_not_a_newer_suppressed_one():
    store = MemoryCoverageStore()
    store.add(facts("2026-10", 7, "a") + facts("2026-11", 2, "b") + facts("2026-12", 1, "c"))
    view = coverage_view(store, KNOWN, month=None, today=TODAY)
    assert view.month == "2026-10"
    assert view.chosen == (
        "the newest month with published counts; 2026-11 has every count below 5 so far; "
        "2026-12 is in progress: none of its counts is released until it is over"
    )
    assert view.to_json()["month_chosen"] == view.chosen


def test_asked_for_all_suppressed_or_nothing_at_all_say_so():
    store = MemoryCoverageStore()
    assert coverage_view(store, KNOWN, month=None, today=TODAY).chosen == (
        "this month; nothing is counted yet; 2026-12 is not over yet, so none of its counts is "
        "released: they grow day by day, and comparing two days would give one day's signals "
        "away"
    )
    store.add(facts("2026-11", 3, "a"))
    quiet = coverage_view(store, KNOWN, month=None, today=TODAY)
    assert (quiet.month, quiet.chosen) == (
        "2026-11",
        "the newest month with data; every count in it is below 5",
    )
    asked = coverage_view(store, KNOWN, month="2026-09", today=TODAY)
    assert (asked.month, asked.chosen) == ("2026-09", "the month asked for")


def test_the_month_in_progress_is_never_shown_unasked_and_releases_nothing_asked():
    """A month not over yet grows day by day: released, two days' pages would differ by one
    day's signals. It is passed over unasked, and asked for, it releases no count."""
    store = MemoryCoverageStore()
    store.add(facts("2026-11", 6, "a") + facts("2026-12", 40, "b"))
    view = coverage_view(store, KNOWN, month=None, today=TODAY)
    assert view.month == "2026-11"
    assert view.release.in_progress == ()
    asked = coverage_view(store, KNOWN, month="2026-12", today=TODAY)
    assert asked.release.in_progress == ("2026-12",)
    assert {(r.reports, r.indicators) for r in asked.release.rows_of("2026-12")} == {(None, None)}
    assert [t.indicators for t in asked.release.totals if t.month == "2026-12"] == [0]
    assert asked.ranking == [] and "2026-12 is not over yet" in asked.chosen
    assert asked.to_json()["in_progress"] == ["2026-12"]
    [earlier] = [r for r in asked.release.rows_of("2026-11") if r.municipality == "GM0361"]
    assert earlier.indicators == 6  # a month that is over is released as before
    only = MemoryCoverageStore()
    only.add(facts("2026-12", 40, "c"))
    first = coverage_view(only, KNOWN, month=None, today=TODAY)
    assert first.month == "2026-12" and first.release.in_progress == ("2026-12",)
    assert first.chosen.startswith("this month; 2026-12 is not over yet")
