"""Replaying a stacking rule against history (services/core/outcomes/replay.py): the real engine,
locations joined by the identifiers one signal names, precision and recall as counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.core.outcomes.entries import SignalEntry
from services.core.outcomes.replay import group_locations, replay_stacking
from services.core.stacking.config import StackingConfig

T0 = datetime(2026, 9, 1, tzinfo=UTC)
CONFIG = StackingConfig.model_validate(
    {
        "stacking": "iipsy",
        "version": "1",
        "purpose": "datastapeling",
        "alert": {"source": "schakel", "type": "hub.stacked_location_alert.v1"},
        "window_days": 90,
        "min_partner_kinds": 3,
        "min_score": 0.85,
        "min_strength": 0.5,
    }
)
KINDS = {"liander": "energy", "pwn": "water", "woonwaard": "housing"}


def signal(n: int, source: str, day: int, *, stackable: bool = True) -> SignalEntry:
    return SignalEntry(
        source=source, signal_id=f"{source}-{n}", signal_type=f"{KINDS[source]}.x.v1",
        time=T0 + timedelta(days=day), partner_kind=KINDS[source], municipality="GM0361",
        strength=0.8, stackable=stackable, thread=None, rules=(), keep_until=T0 + timedelta(400),
    )  # fmt: skip


def history() -> tuple[
    list[SignalEntry], dict[tuple[str, str], set[str]], dict[str, list[datetime]]
]:
    signals: list[SignalEntry] = []
    located: dict[tuple[str, str], set[str]] = {}

    def at(entry: SignalEntry, *names: str) -> None:
        signals.append(entry)
        located[entry.key] = set(names)

    # A: three kinds -> alerted by the rule; found 30 days after the last signal
    at(signal(1, "liander", 0), "addr-a", "ean-a")
    at(signal(2, "pwn", 5), "addr-a")
    at(signal(3, "woonwaard", 10), "bag-a", "addr-a")
    # B: two kinds, the energy signal names only the EAN (joined by the water signal) -> found
    at(signal(4, "liander", 0), "ean-b")
    at(signal(5, "pwn", 3), "addr-b", "ean-b")
    # C: three kinds, nothing found
    at(signal(6, "liander", 0), "addr-c")
    at(signal(7, "pwn", 1), "addr-c")
    at(signal(8, "woonwaard", 2), "addr-c")
    # D: found, but no stackable evidence: no rule could have caught it
    at(signal(9, "liander", 0, stackable=False), "addr-d")
    findings = {
        "bag-a": [T0 + timedelta(days=40)],
        "ean-b": [T0 + timedelta(days=20)],
        "addr-d": [T0 + timedelta(days=20)],
    }
    return signals, located, findings


def test_identifiers_one_signal_names_together_are_one_location():
    groups = group_locations({("s", "1"): {"a", "b"}, ("s", "2"): {"b", "c"}, ("s", "3"): {"d"}})
    assert groups["a"] == groups["b"] == groups["c"] != groups["d"]


def test_the_rule_as_it_is_and_a_proposed_change_on_the_same_history():
    signals, located, findings = history()
    window = timedelta(days=180)
    current = replay_stacking(CONFIG, signals, located, findings, outcome_window=window,
                              threshold=1)  # fmt: skip
    assert (current.alerts, current.alerts_followed) == (2, 1)  # A and C; only A was found
    assert (current.found_locations, current.found_alerted) == (2, 1)  # A and B; D had nothing
    assert current.precision == pytest.approx(0.5)
    assert current.recall == pytest.approx(0.5)
    assert current.lead_days_median == pytest.approx(30.0)
    two = CONFIG.model_copy(update={"min_partner_kinds": 2, "min_score": 0.8})
    proposed = replay_stacking(two, signals, located, findings, outcome_window=window,
                               threshold=1)  # fmt: skip
    assert (proposed.alerts, proposed.alerts_followed) == (3, 2)
    assert (proposed.found_locations, proposed.found_alerted) == (2, 2)
    assert proposed.recall == pytest.approx(1.0)


def test_small_counts_of_a_replay_are_suppressed():
    signals, located, findings = history()
    result = replay_stacking(CONFIG, signals, located, findings,
                             outcome_window=timedelta(days=180))  # fmt: skip
    assert result.alerts is None and result.precision is None and result.recall is None
    assert result.to_json()["precision_ci95"] is None
