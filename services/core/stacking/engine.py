"""The stacking state machine: observations in, the changes to make durable out.

:class:`Stacker` holds the evidence of every tracked location (loaded from the store at
start-up) and, per observation, adds the evidence, drops what fell out of the window, applies
the rule and decides the alert. It returns a :class:`Changes` that the shell writes to the
store in one transaction before it publishes alerts and commits offsets, so memory and store
agree after every batch and a restart resumes exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.core.stacking.alerts import Alert, next_alert
from services.core.stacking.config import StackingConfig
from services.core.stacking.evidence import Evidence, Observation
from services.core.stacking.rule import evaluate, in_window

__all__ = ["Changes", "LocationState", "Snapshot", "Stacker"]


@dataclass
class LocationState:
    """What the hub knows about one location (keyed by its internal pseudonym)."""

    municipality: str
    locator: str | None
    evidence: list[Evidence] = field(default_factory=list)
    alert: Alert | None = None


@dataclass
class Snapshot:
    """Everything a store holds, as loaded at start-up."""

    locations: dict[str, LocationState] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    """Internal pseudonym of a BAG id or EAN -> key of the location it belongs to."""


@dataclass
class Changes:
    """What one batch changed; written in one transaction."""

    evidence: list[tuple[str, Evidence]] = field(default_factory=list)
    expired: list[tuple[str, str]] = field(default_factory=list)
    """``(location, evidence key)`` dropped from the window."""
    aliases: dict[str, str] = field(default_factory=dict)
    locations: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """``location -> (municipality, locator)`` to insert or update."""
    dropped: list[str] = field(default_factory=list)
    """Locations merged into another one (their rows go; their evidence moved)."""
    alerts: dict[str, Alert] = field(default_factory=dict)
    """Raised or updated alerts by alert id (the newest revision), not yet published."""
    duplicates: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.evidence
            or self.expired
            or self.aliases
            or self.locations
            or self.dropped
            or self.alerts
        )


class Stacker:
    """Applies the stacking rule to a stream of observations (pure; state in memory)."""

    def __init__(self, config: StackingConfig, snapshot: Snapshot | None = None) -> None:
        self.config = config
        snapshot = snapshot or Snapshot()
        self.locations = snapshot.locations
        self.aliases = snapshot.aliases
        self._window = timedelta(days=config.window_days)
        self._kinds_needed = config.min_partner_kinds

    def resolve(self, observation: Observation) -> str:
        """The key of the location an observation is about."""
        if observation.primary is not None:
            return observation.primary
        for name in observation.others:
            key = self.aliases.get(name)
            if key is not None:
                return key
        return observation.others[0]

    def apply(self, observations: Iterable[Observation], now: datetime) -> Changes:
        changes = Changes()
        for observation in observations:
            self._apply(observation, now, changes)
        return changes

    def _apply(self, observation: Observation, now: datetime, changes: Changes) -> None:
        key = self.resolve(observation)
        if observation.primary is not None:
            for name in observation.others:
                if self.aliases.get(name) != key:
                    self.aliases[name] = changes.aliases[name] = key
                    orphan = self.locations.pop(name, None)
                    if orphan is not None:
                        self._merge(key, name, orphan, changes)
        state = self.locations.get(key)
        if state is None:
            state = self.locations[key] = LocationState(
                observation.municipality, observation.locate()
            )
            changes.locations[key] = (state.municipality, state.locator)
        evidence = observation.evidence
        evidences = self._add(key, state, observation, changes)
        if evidences is None:
            changes.duplicates += 1
            return
        changes.evidence.append((key, evidence))
        floor = self.config.min_strength
        if len({e.partner_kind for e in evidences if e.strength >= floor}) < self._kinds_needed:
            return  # cannot meet the rule: no alert to raise or update
        alert = next_alert(
            state.alert,
            evaluate(self.config, state.evidence),
            location=key,
            municipality=state.municipality,
            locator=state.locator,
            now=now,
        )
        if alert is not None:
            state.alert = alert
            changes.alerts[alert.alert_id] = alert

    def _merge(self, key: str, name: str, orphan: LocationState, changes: Changes) -> None:
        """Move evidence filed under a BAG id or EAN before its address was known to the
        address's location (the observation that links them is applied right after)."""
        state = self.locations.get(key)
        if state is None:
            state = self.locations[key] = LocationState(orphan.municipality, orphan.locator)
            changes.locations[key] = (state.municipality, state.locator)
        have = {e.key for e in state.evidence}
        for e in orphan.evidence:
            changes.expired.append((name, e.key))
            if e.key not in have:
                state.evidence.append(e)
                changes.evidence.append((key, e))
        changes.dropped.append(name)
        changes.locations.pop(name, None)

    def _add(
        self, key: str, state: LocationState, observation: Observation, changes: Changes
    ) -> list[Evidence] | None:
        """Add the evidence to the location (None if it has it already), keep the newest
        municipality and a locator, and drop what fell out of the window."""
        evidence = observation.evidence
        evidences = state.evidence
        if not evidences:
            evidences.append(evidence)
            return evidences
        key_of = evidence.key
        if any(e.key == key_of for e in evidences):
            return None
        evidences.append(evidence)
        newest = max(e.time for e in evidences)
        if evidence.time >= newest:
            newer = (observation.municipality, state.locator or observation.locate())
            if newer != (state.municipality, state.locator):
                state.municipality, state.locator = newer
                changes.locations[key] = newer
        if min(e.time for e in evidences) <= newest - self._window:
            kept = in_window(evidences, self.config.window_days)
            if len(kept) < len(evidences):
                keep = {e.key for e in kept}
                changes.expired.extend((key, e.key) for e in evidences if e.key not in keep)
                state.evidence = evidences = kept
        return evidences

    def alerts(self) -> Mapping[str, Alert]:
        """The current alert of every location that has one, by location."""
        return {k: s.alert for k, s in self.locations.items() if s.alert is not None}
