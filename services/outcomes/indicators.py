"""Read the outcome store into the indicator tally and its suppressed release.

Outcomes are few, so they are read whole and keyed by location; the signals at those
locations are found through the index; every other signal is counted as followed by nothing
while the indexed signals stream past (:func:`services.core.outcomes.indicators.tally`).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from services.core.coverage.release import DEFAULT_THRESHOLD
from services.core.outcomes.indicators import IndicatorRelease, Tally, release, tally
from services.core.outcomes.replay import ReplayResult, replay_stacking
from services.core.stacking.config import StackingConfig
from services.outcomes.store import OutcomeStore


def outcomes_by_signal(store: OutcomeStore) -> dict[tuple[str, str], list[tuple[datetime, str]]]:
    """(source, signal id) -> the outcomes ``(time, class)`` at any of the signal's locations."""
    at_location: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for outcome in store.all_outcomes():
        for location in outcome.locations:
            at_location[location].append((outcome.time, outcome.outcome_class))
    found: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for key, locations in store.signal_keys_at(at_location).items():
        seen = {item for location in locations for item in at_location[location]}
        found[key] = sorted(seen)
    return found


def measure(store: OutcomeStore, window: timedelta) -> Tally:
    """Count every indexed signal by what followed it within ``window``."""
    return tally(store.signals(), outcomes_by_signal(store), window)


def indicator_release(
    store: OutcomeStore,
    *,
    window: timedelta,
    threshold: int = DEFAULT_THRESHOLD,
    stacking_rule: str = "stacking",
) -> IndicatorRelease:
    """The published indicators (counts below ``threshold`` suppressed)."""
    return release(
        measure(store, window), window=window, threshold=threshold, stacking_rule=stacking_rule
    )


def replay(
    store: OutcomeStore,
    config: StackingConfig,
    *,
    outcome_window: timedelta,
    threshold: int = DEFAULT_THRESHOLD,
) -> ReplayResult:
    """What ``config`` would have alerted on the stored history, against the findings."""
    located = store.stackable_locations()
    findings: dict[str, list[datetime]] = defaultdict(list)
    for outcome in store.all_outcomes():
        if outcome.outcome_class == "finding":
            for location in outcome.locations:
                findings[location].append(outcome.time)
    signals = [s for s in store.signals() if s.stackable]
    return replay_stacking(
        config, signals, located, findings, outcome_window=outcome_window, threshold=threshold
    )
