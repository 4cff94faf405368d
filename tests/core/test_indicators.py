"""Indicators against outcomes (services/core/outcomes/indicators.py): classification, Wilson
intervals, and a release that no difference of queries can undo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.outcomes.entries import SignalEntry
from services.core.outcomes.indicators import (
    ALERT_TYPE,
    CLASSES,
    Followed,
    Tally,
    classify,
    release,
    tally,
    wilson,
)
from tests.fuzz.strategies import fuzz_settings

T0 = datetime(2026, 9, 1, 12, tzinfo=UTC)
WINDOW = timedelta(days=180)


def test_wilson_matches_the_textbook_values():
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(81, 263) == pytest.approx((0.2553, 0.3662), abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_classify_takes_the_first_finding_within_the_window_after_the_signal():
    later = T0 + timedelta(days=30)
    assert classify(T0, [(later, "finding"), (T0 + timedelta(days=9), "finding")], WINDOW) == (
        Followed("positive", timedelta(days=9))
    )
    assert classify(T0, [(later, "no_finding")], WINDOW) == Followed("negative")
    assert classify(T0, [(later, "no_finding"), (later, "finding")], WINDOW).outcome == "positive"
    assert classify(T0, [(later, "measure")], WINDOW) == Followed("none")  # measures follow
    assert classify(T0, [(T0 - timedelta(days=1), "finding")], WINDOW) == Followed("none")
    assert classify(T0, [(T0 + timedelta(days=181), "finding")], WINDOW) == Followed("none")


def entry(signal_id: str, *, when: datetime = T0, signal_type: str = "energy.consumption_anomaly.v1",
          source: str = "liander", rules: tuple[str, ...] = ("c@1/r",),
          thread: str | None = None) -> SignalEntry:  # fmt: skip
    return SignalEntry(
        source=source, signal_id=signal_id, signal_type=signal_type, time=when,
        partner_kind="energy", municipality="GM0361", strength=0.9, stackable=True,
        thread=thread, rules=rules, keep_until=when + WINDOW,
    )  # fmt: skip


def test_an_alert_counts_once_however_often_it_was_revised():
    revisions = [
        entry(f"a{i}", when=T0 + timedelta(days=i), signal_type=ALERT_TYPE, source="schakel",
              thread="alert-1")
        for i in range(3)
    ]  # fmt: skip
    found = {r.key: [(T0 + timedelta(days=20), "finding")] for r in revisions}
    counted = tally(revisions, found, WINDOW)
    cell = (ALERT_TYPE, "schakel", ("c@1/r",), "2026-09")
    assert counted.counts[(cell, "positive")] == 1
    assert counted.leads[cell] == [20.0]  # from the first revision


def make_tally(cells: dict[tuple[str, str, tuple[str, ...], str, str], int]) -> Tally:
    counted = Tally()
    for (signal_type, partner, rules, month, outcome), n in cells.items():
        for _ in range(n):
            lead = timedelta(days=10) if outcome == "positive" else None
            counted.add((signal_type, partner, rules, month), Followed(outcome, lead))  # type: ignore[arg-type]
    return counted


def test_a_partner_total_minus_its_types_reveals_nothing_suppressed():
    """Suppressed per row, liander (8 positives) minus the anomaly type (5) would reveal the 3
    positives after tampering signals; from released cells only, both say 5."""
    counted = make_tally(
        {
            ("energy.consumption_anomaly.v1", "liander", ("c@1/a",), "2026-09", "positive"): 5,
            ("energy.consumption_anomaly.v1", "liander", ("c@1/a",), "2026-09", "none"): 40,
            ("energy.meter_tampering.v1", "liander", ("c@1/t",), "2026-09", "positive"): 3,
            ("energy.meter_tampering.v1", "liander", ("c@1/t",), "2026-09", "none"): 9,
        }
    )
    published = release(counted, window=WINDOW)
    rows = {(r.dimension, r.key, r.month): r for r in published.rows}
    partner = rows[("partner", "liander", None)]
    anomaly = rows[("type", "energy.consumption_anomaly.v1", None)]
    tampering = rows[("type", "energy.meter_tampering.v1", None)]
    assert partner.positive == anomaly.positive == 5
    assert tampering.positive is None and tampering.none == 9
    assert partner.none == 49
    assert partner.precision == pytest.approx(5 / 54)
    assert rows[("rule", "c@1/t", None)].positive is None


def test_precision_and_lead_time_come_from_published_counts():
    counted = make_tally(
        {
            ("water.abnormal_use.v1", "pwn", ("c@1/w",), "2026-09", "positive"): 6,
            ("water.abnormal_use.v1", "pwn", ("c@1/w",), "2026-09", "negative"): 14,
            ("water.abnormal_use.v1", "pwn", ("c@1/w",), "2026-09", "none"): 80,
            ("water.abnormal_use.v1", "pwn", ("c@1/w",), "2026-10", "positive"): 2,
            ("water.abnormal_use.v1", "pwn", ("c@1/w",), "2026-10", "none"): 50,
        }
    )
    published = release(counted, window=WINDOW)
    [sept, october, total] = published.trend("type", "water.abnormal_use.v1") + published.totals(
        "type"
    )
    assert (sept.positive, sept.negative, sept.none) == (6, 14, 80)
    assert sept.precision == pytest.approx(0.06)
    assert (sept.precision_low, sept.precision_high) == pytest.approx(wilson(6, 100))
    assert sept.checked_precision == pytest.approx(0.3)
    assert sept.lead_days_median == 10.0
    assert (october.positive, october.negative, october.none) == (None, None, 50)
    assert october.precision is None  # its positives are suppressed: no rate at all
    assert october.lead_days_median is None
    assert (total.positive, total.negative, total.none) == (6, 14, 130)
    json = published.to_json()
    assert json["threshold"] == 5 and json["window_days"] == 180
    assert "suppressed" in json["note"]


CELL = st.tuples(
    st.sampled_from(["energy.consumption_anomaly.v1", "water.abnormal_use.v1", ALERT_TYPE]),
    st.sampled_from(["liander", "pwn", "schakel"]),
    st.sampled_from([("c@1/a",), ("c@1/a", "c@1/b"), ()]),
    st.sampled_from(["2026-08", "2026-09", "2026-10"]),
    st.sampled_from(CLASSES),
)


@given(
    cells=st.dictionaries(CELL, st.integers(0, 30), max_size=40),
    changes=st.lists(st.tuples(CELL, st.integers(0, 4)), max_size=20),
    threshold=st.integers(5, 8),
)
@fuzz_settings(200)
def test_changing_suppressed_cells_changes_nothing_released(cells, changes, threshold):
    """Two tallies that differ only in cells below the threshold (their counts and lead
    times, present or not) give the same release, row for row, month for month."""
    other = dict(cells)
    for cell, n in changes:
        if cells.get(cell, 0) < threshold:
            other[cell] = n
    a = release(make_tally(cells), window=WINDOW, threshold=threshold)
    b = release(make_tally(other), window=WINDOW, threshold=threshold,
                months=a.months)  # fmt: skip
    assert [r.to_json() for r in a.rows] == [r.to_json() for r in b.rows]
    for row in a.rows:
        for count in (row.positive, row.negative, row.none):
            assert count is None or count >= threshold
