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
        "the newest month with published counts; 2026-11, 2026-12 have every count below 5 so far"
    )
    assert view.to_json()["month_chosen"] == view.chosen


def test_asked_for_all_suppressed_or_nothing_at_all_say_so():
    store = MemoryCoverageStore()
    assert coverage_view(store, KNOWN, month=None, today=TODAY).chosen == (
        "this month; nothing is counted yet"
    )
    store.add(facts("2026-11", 3, "a"))
    quiet = coverage_view(store, KNOWN, month=None, today=TODAY)
    assert (quiet.month, quiet.chosen) == (
        "2026-11",
        "the newest month with data; every count in it is below 5",
    )
    asked = coverage_view(store, KNOWN, month="2026-09", today=TODAY)
    assert (asked.month, asked.chosen) == ("2026-09", "the month asked for")
