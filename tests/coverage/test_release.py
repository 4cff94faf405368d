"""Aggregation, suppression and the report-gap ranking of coverage (pure)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.coverage.errors import CoverageError
from services.core.coverage.facts import category_of, months_until
from services.core.coverage.feed import aggregate_release, grounds
from services.core.coverage.release import release, report_gap
from services.core.decision import RuleRef

TOWNS = [("GM0001", "A"), ("GM0002", "B"), ("GM0003", "C"), ("GM0004", "D")]
MONTHS = ("2026-08", "2026-09", "2026-10")


def test_categories_follow_the_partner_kind_of_the_signal_type():
    assert category_of("residents.anonymous_tip.v1") == "reports"
    assert category_of("rural.barn_rental_approach.v1") == "reports"
    assert category_of("energy.consumption_anomaly.v1") == "indicators"
    assert category_of("waste.drug_waste_dumping.v1") == "indicators"
    assert category_of("hub.stacked_location_alert.v1") is None


def test_months_until_crosses_a_year_and_refuses_bad_input():
    assert months_until("2026-02", 4) == ("2025-11", "2025-12", "2026-01", "2026-02")
    with pytest.raises(CoverageError, match="YYYY-MM"):
        months_until("2026-13", 1)


def test_cells_below_the_threshold_are_suppressed_and_left_out_of_totals():
    counts = Counter(
        {
            ("GM0001", "2026-09", "indicators"): 12,
            ("GM0001", "2026-09", "reports"): 4,
            ("GM0002", "2026-09", "indicators"): 5,
            ("GM0002", "2026-09", "reports"): 9,
            ("GM0003", "2026-09", "reports"): 1,
        }
    )
    out = release(counts, TOWNS, ["2026-09"], threshold=5)
    rows = {r.municipality: r for r in out.rows}
    assert (rows["GM0001"].reports, rows["GM0001"].indicators) == (None, 12)
    assert (rows["GM0002"].reports, rows["GM0002"].indicators) == (9, 5)
    assert (rows["GM0003"].reports, rows["GM0003"].indicators) == (None, None)
    assert (rows["GM0004"].reports, rows["GM0004"].indicators) == (None, None)
    (total,) = out.totals
    assert (total.reports, total.indicators) == (9, 17)


def test_the_ranking_puts_high_indicators_with_few_reports_first():
    counts = Counter(
        {
            ("GM0001", "2026-09", "indicators"): 100,
            ("GM0001", "2026-09", "reports"): 10,
            ("GM0002", "2026-09", "indicators"): 50,
            ("GM0002", "2026-09", "reports"): 40,
            ("GM0003", "2026-09", "indicators"): 30,
            ("GM0004", "2026-09", "indicators"): 3,
        }
    )
    ranking = report_gap(release(counts, TOWNS, ["2026-09"]), "2026-09")
    # ratio 50 reports / 180 indicators: A expects 27.8 (has 10), C 8.3 (<5), B 13.9 (has 40)
    assert [g.municipality for g in ranking] == ["GM0001", "GM0003", "GM0002"]
    assert ranking[0].gap == pytest.approx(100 * 50 / 180 - 10, abs=0.01)
    assert ranking[1].reports is None
    assert all(g.municipality != "GM0004" for g in ranking)  # indicators suppressed: unranked


def test_a_threshold_below_one_is_refused():
    with pytest.raises(CoverageError, match="threshold"):
        release(Counter(), TOWNS, ["2026-09"], threshold=0)


cells = st.dictionaries(
    st.tuples(
        st.sampled_from([c for c, _ in TOWNS]),
        st.sampled_from(MONTHS),
        st.sampled_from(["reports", "indicators"]),
    ),
    st.integers(min_value=0, max_value=40),
)


def _everything_released(counts: Counter, threshold: int) -> list[object]:
    """Every query a user can make: each month alone, every range of months, the ranking of
    each month and the campaign-team message of each month."""
    basis = RuleRef("nh-drugsalert", "2025.1", "r", "art. 6", "meldingsbereidheid")
    from services.core.coverage.feed import Grounds

    now = datetime(2026, 11, 1, tzinfo=UTC)
    out: list[object] = []
    for first in range(len(MONTHS)):
        for last in range(first, len(MONTHS)):
            months = MONTHS[first : last + 1]
            published = release(counts, TOWNS, months, threshold)
            out.append(published.to_json())
            for month in months:
                out.append([g.__repr__() for g in report_gap(published, month)])
                message = aggregate_release(
                    published, month, "campagneteam-nh", Grounds(basis, 730), now
                ).message
                out.append(message)
    return out


@settings(max_examples=150, deadline=None)
@given(
    counts=cells,
    threshold=st.integers(min_value=2, max_value=8),
    data=st.data(),
)
def test_no_query_or_difference_of_queries_reveals_a_suppressed_count(counts, threshold, data):
    """Change any suppressed cell to any other value below the threshold: every number any
    query releases stays the same, so no difference between releases (a month total minus
    the other municipalities, two overlapping month ranges) can tell what it was."""
    table = Counter(counts)
    suppressed = [
        (code, month, category)
        for code, _ in TOWNS
        for month in MONTHS
        for category in ("reports", "indicators")
        if table[(code, month, category)] < threshold
    ]
    changed = Counter(table)
    for cell in data.draw(
        st.lists(st.sampled_from(suppressed), unique=True) if suppressed else st.just([])
    ):
        changed[cell] = data.draw(st.integers(min_value=0, max_value=threshold - 1))
    assert _everything_released(changed, threshold) == _everything_released(table, threshold)


@settings(max_examples=60, deadline=None)
@given(counts=cells)
def test_a_published_cell_is_the_true_count(counts):
    table = Counter(counts)
    published = release(table, TOWNS, MONTHS, 5)
    for row in published.rows:
        for category in ("reports", "indicators"):
            value = getattr(row, category)
            true = table[(row.municipality, row.month, category)]
            assert value == (true if true >= 5 else None)


def test_grounds_are_a_coverage_aggregates_entry_naming_the_recipient():
    from services.config import Paths
    from services.core.covenant.loader import load_files

    covenants = [c.covenant for c in load_files(Paths.from_env({}).covenants).covenants]
    found = grounds(covenants, "campagneteam-nh")
    assert found is not None
    assert found.rule.covenant_id == "nh-drugsalert"
    assert found.rule.rule_id == "coverage-to-campaign-team"
    assert found.rule.purpose == "meldingsbereidheid"
    assert found.min_cell == 5
    assert grounds(covenants, "riec-nh") is None  # per-signal rules are no grounds for it
    assert grounds([], "campagneteam-nh") is None
