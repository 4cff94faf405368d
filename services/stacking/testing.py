"""An in-memory stacking store: the test double of :class:`~services.stacking.store.SqlStackingStore`.

Rows go through the same conversions as the SQL store (:mod:`services.stacking.rows`), and a
new store on the same :class:`MemoryStackingDatabase` is the equivalent of reopening the
database after a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from services.core.stacking.alerts import Alert
from services.core.stacking.engine import Changes, LocationState, Snapshot
from services.stacking.errors import StackingError
from services.stacking.rows import alert_of, alert_row, evidence_of, evidence_row


@dataclass
class MemoryStackingDatabase:
    lock: threading.Lock = field(default_factory=threading.Lock)
    locations: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    evidence: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_writes: bool = False
    """Set to make the next writes fail, as a lost database connection would."""


class MemoryStackingStore:
    def __init__(self, db: MemoryStackingDatabase | None = None) -> None:
        self.db = db or MemoryStackingDatabase()
        self._closed = False

    def _open(self) -> MemoryStackingDatabase:
        if self._closed:
            raise StackingError("the stacking store is closed. Fix: open a new store.")
        return self.db

    def load(self) -> Snapshot:
        db = self._open()
        snapshot = Snapshot()
        with db.lock:
            for k, (municipality, locator) in db.locations.items():
                snapshot.locations[k] = LocationState(municipality, locator)
            for row in db.evidence.values():
                state = snapshot.locations.get(row["location"])
                if state is not None:
                    state.evidence.append(evidence_of(row))
            snapshot.aliases.update(db.aliases)
            alerts = [alert_of(r) for r in db.alerts.values()]
        for alert in sorted(alerts, key=lambda a: (a.raised_at, a.alert_id)):
            state = snapshot.locations.get(alert.location)
            if state is not None:
                state.alert = alert
        for state in snapshot.locations.values():
            state.evidence.sort(key=lambda e: (e.time, e.key))
        return snapshot

    def write(self, changes: Changes) -> None:
        db = self._open()
        if db.fail_writes:
            raise StackingError("stacking store: writing a batch of evidence failed (simulated)")
        with db.lock:
            db.locations.update(changes.locations)
            for k, e in changes.evidence:
                db.evidence.setdefault((k, e.source, e.signal_id), evidence_row(k, e))
            for k, key in changes.expired:
                source, signal_id = key.split("\x1f", 1)
                db.evidence.pop((k, source, signal_id), None)
            db.aliases.update(changes.aliases)
            for k in changes.dropped:
                db.locations.pop(k, None)
            for alert in changes.alerts.values():
                db.alerts[alert.alert_id] = alert_row(alert)

    def unpublished(self) -> list[Alert]:
        db = self._open()
        with db.lock:
            rows = [r for r in db.alerts.values() if not r["published"]]
        rows.sort(key=lambda r: (r["updated_at_us"], r["alert_id"]))
        return [alert_of(r) for r in rows]

    def mark_published(self, alerts: list[Alert]) -> None:
        db = self._open()
        with db.lock:
            for alert in alerts:
                row = db.alerts.get(alert.alert_id)
                if row is not None and row["signal_id"] == alert.signal_id:
                    row["published"] = True

    def alerts(
        self, *, municipality: str | None = None, min_score: float = 0.0, limit: int = 1000
    ) -> list[Alert]:
        db = self._open()
        with db.lock:
            rows = [
                r
                for r in db.alerts.values()
                if r["score"] >= min_score
                and (municipality is None or r["municipality"] == municipality)
            ]
        rows.sort(key=lambda r: (-r["score"], r["alert_id"]))
        return [alert_of(r) for r in rows[:limit]]

    def close(self) -> None:
        self._closed = True
