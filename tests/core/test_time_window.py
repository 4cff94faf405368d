"""Plausible signal times: at most CLOCK_SKEW ahead of the decision, and no older than the
longest retention of any rule (of any version) that lets the source send the type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.errors import SignalRejected
from services.core.time_window import CLOCK_SKEW, TimeWindow, check_not_ahead
from tests.core.builders import ANOMALY_RULE, covenant_text, load_texts

MOMENT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TYPE = "energy.consumption_anomaly.v1"


def window(*texts: str) -> TimeWindow:
    return TimeWindow(item.covenant for item in load_texts(*texts).covenants)


def code(w: TimeWindow, time: datetime, source: str = "liander") -> str | None:
    try:
        w.check(source, TYPE, time, MOMENT, signal_id="s-1")
    except SignalRejected as exc:
        refused = exc
    else:
        return None
    assert refused.signal_id == "s-1" and "Fix" in refused.message
    assert time.isoformat()[:16] not in refused.message  # the time itself is not repeated
    return refused.code


def test_a_time_ahead_of_the_clock_is_refused_beyond_the_skew():
    w = window(covenant_text(ANOMALY_RULE))
    assert code(w, MOMENT + CLOCK_SKEW) is None
    assert code(w, MOMENT + CLOCK_SKEW + timedelta(seconds=1)) == "time_in_future"
    assert code(w, MOMENT + timedelta(days=3), source="vitens") == "time_in_future"
    with pytest.raises(SignalRejected, match="5 minutes"):
        check_not_ahead(MOMENT + timedelta(hours=1), MOMENT, signal_id=None)


def test_the_oldest_time_is_the_longest_retention_of_any_version_and_rule():
    short = ANOMALY_RULE.replace("P180D", "P30D")
    longer = ANOMALY_RULE.replace("P180D", "P400D").replace("anomaly-to-riec", "anomaly-long")
    w = window(
        covenant_text(short, version='"1"', valid="{from: 2024-01-01, until: 2025-12-31}"),
        covenant_text(longer, version='"2"', valid="{from: 2026-01-01, until: 2027-12-31}"),
    )
    assert code(w, MOMENT - timedelta(days=400)) is None
    assert code(w, MOMENT - timedelta(days=401)) == "time_too_old"
    only_short = window(covenant_text(short))
    assert code(only_short, MOMENT - timedelta(days=30)) is None
    assert code(only_short, MOMENT - timedelta(days=31)) == "time_too_old"
    with pytest.raises(SignalRejected, match=r"30 days .*test-covenant@1 rule anomaly-to-riec"):
        only_short.check("liander", TYPE, MOMENT - timedelta(days=31), MOMENT, signal_id=None)


def test_a_source_no_rule_covers_has_no_oldest_time():
    """Its signals are withheld by the policy (no rule allows them), whatever their time."""
    w = window(covenant_text(ANOMALY_RULE))
    assert code(w, MOMENT - timedelta(days=5000), source="pwn") is None
