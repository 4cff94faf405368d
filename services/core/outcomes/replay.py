"""Replay a stacking rule against past signals and outcomes: what would it have found? (pure)

The stackable signals of the index (those a ``stacking: true`` rule let the hub use) are put
through the **real** stacking engine (:class:`~services.core.stacking.engine.Stacker`) in time
order, each as of its own time, under the rule as it is and under a proposed change. Locations
are the hub-internal pseudonyms a signal names, joined when one signal names several (its
address and its EAN), as stacking's aliases join them.

Measured per rule, on the same history:

* **alerts** raised, and how many were followed by a police finding at the location within the
  outcome window after the alert (**precision**, with a Wilson interval);
* **found locations** — locations where the police found something and that had stackable
  evidence in the window before — and how many of them the rule had alerted before the
  finding (**recall**); the median **lead time** from alert to finding.

Counts below the threshold are suppressed and rates computed only from published counts, as
the indicator release does, so the replay can be shared with the covenant's partners.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.core.coverage.release import DEFAULT_THRESHOLD
from services.core.outcomes.entries import SignalEntry
from services.core.outcomes.indicators import wilson
from services.core.stacking.config import StackingConfig
from services.core.stacking.engine import Stacker
from services.core.stacking.evidence import Evidence, Observation

__all__ = ["ReplayResult", "group_locations", "replay_stacking"]


def group_locations(located: Mapping[tuple[str, str], Iterable[str]]) -> dict[str, str]:
    """Pseudonym -> the key of its location: pseudonyms named by one signal are one location
    (union-find; the key is the smallest pseudonym of the group, so the result is stable)."""
    parent: dict[str, str] = {}

    def find(name: str) -> str:
        root = name
        while parent.setdefault(root, root) != root:
            root = parent[root]
        while parent[name] != root:
            parent[name], name = root, parent[name]
        return root

    for names in located.values():
        ordered = sorted(names)
        if ordered:
            find(ordered[0])
        for other in ordered[1:]:
            a, b = find(ordered[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {name: find(name) for name in list(parent)}


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What one stacking rule would have done on the history (None: suppressed)."""

    alerts: int | None
    alerts_followed: int | None
    found_locations: int | None
    found_alerted: int | None
    precision: float | None
    precision_ci95: tuple[float, float] | None
    recall: float | None
    recall_ci95: tuple[float, float] | None
    lead_days_median: float | None

    def to_json(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 4)

        def interval(ci: tuple[float, float] | None) -> list[float] | None:
            return None if ci is None else [round(ci[0], 4), round(ci[1], 4)]

        return {
            "alerts": self.alerts,
            "alerts_followed_by_finding": self.alerts_followed,
            "found_locations": self.found_locations,
            "found_locations_alerted_before": self.found_alerted,
            "precision": rounded(self.precision),
            "precision_ci95": interval(self.precision_ci95),
            "recall": rounded(self.recall),
            "recall_ci95": interval(self.recall_ci95),
            "lead_days_median": None
            if self.lead_days_median is None
            else round(self.lead_days_median, 1),
        }


def replay_stacking(
    config: StackingConfig,
    signals: Sequence[SignalEntry],
    located: Mapping[tuple[str, str], Iterable[str]],
    findings: Mapping[str, Sequence[datetime]],
    *,
    outcome_window: timedelta,
    threshold: int = DEFAULT_THRESHOLD,
) -> ReplayResult:
    """Replay ``config`` over the stackable ``signals`` (``located``: their pseudonyms;
    ``findings``: finding times per pseudonym)."""
    groups = group_locations(located)
    found_at: dict[str, list[datetime]] = defaultdict(list)
    for name, times in findings.items():
        found_at[groups.get(name, name)].extend(times)
    stacker = Stacker(config)
    raised: dict[str, tuple[str, datetime]] = {}  # alert id -> (location, raised at)
    evidence_times: dict[str, list[datetime]] = defaultdict(list)
    ordered = sorted(
        (s for s in signals if s.stackable and located.get(s.key)),
        key=lambda s: (s.time, s.source, s.signal_id),
    )
    for entry in ordered:
        location = groups[min(located[entry.key])]
        evidence_times[location].append(entry.time)
        observation = Observation(
            primary=location,
            others=(),
            municipality=entry.municipality or "GM0000",
            locate=_nowhere,
            evidence=Evidence(
                source=entry.source,
                signal_id=entry.signal_id,
                partner_kind=entry.partner_kind,
                signal_type=entry.signal_type,
                barrier_steps=(),
                time=entry.time,
                strength=_strength(config, entry),
            ),
            subjects={},
        )
        for alert in stacker.apply([observation], entry.time).alerts.values():
            raised.setdefault(alert.alert_id, (location, alert.raised_at))
    followed = 0
    leads: list[float] = []
    alerted_before: dict[str, list[datetime]] = defaultdict(list)
    for location, at in raised.values():
        alerted_before[location].append(at)
        hits = [t for t in found_at.get(location, ()) if at <= t <= at + outcome_window]
        if hits:
            followed += 1
            leads.append((min(hits) - at) / timedelta(days=1))
    found = 0
    caught = 0
    for location, times in found_at.items():
        first = min(times)
        evidence = [
            t for t in evidence_times.get(location, ()) if first - outcome_window <= t <= first
        ]
        if not evidence:
            continue  # nothing stackable before the finding: no rule could have caught it
        found += 1
        if any(t <= first for t in alerted_before.get(location, ())):
            caught += 1
    return _published(len(raised), followed, found, caught, leads, threshold)


def _published(
    alerts: int, followed: int, found: int, caught: int, leads: list[float], threshold: int
) -> ReplayResult:
    def shown(n: int) -> int | None:
        return n if n >= threshold else None

    a, f, loc, c = shown(alerts), shown(followed), shown(found), shown(caught)
    precision = f / a if a is not None and f is not None else None
    recall = c / loc if loc is not None and c is not None else None
    return ReplayResult(
        alerts=a,
        alerts_followed=f,
        found_locations=loc,
        found_alerted=c,
        precision=precision,
        precision_ci95=wilson(followed, alerts) if precision is not None else None,
        recall=recall,
        recall_ci95=wilson(caught, found) if recall is not None else None,
        lead_days_median=statistics.median(leads) if f is not None and leads else None,
    )


def _strength(config: StackingConfig, entry: SignalEntry) -> float:
    if entry.strength is not None:
        return min(1.0, max(0.0, entry.strength))
    return config.strength.get(entry.signal_type, config.default_strength)


def _nowhere() -> str | None:
    return None
