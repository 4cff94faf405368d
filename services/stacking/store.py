"""The SQL stacking store (SQLite or PostgreSQL through SQLAlchemy Core).

One :meth:`SqlStackingStore.write` is one transaction: evidence inserted (a replayed signal is
skipped by its primary key), expired evidence deleted, locations, aliases and alerts upserted.
The worker writes before it publishes alerts and before it commits its offsets, so a crash at
any point re-reads signals that are already stored, which changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update
from sqlalchemy.exc import SQLAlchemyError

from services.core.stacking.alerts import Alert
from services.core.stacking.engine import Changes, LocationState, Snapshot
from services.database.engine import masked
from services.database.tables.stacking import (
    create_schema,
    stacking_alerts,
    stacking_aliases,
    stacking_evidence,
    stacking_locations,
)
from services.stacking.errors import StackingError
from services.stacking.rows import alert_of, alert_row, evidence_of, to_us


class SqlStackingStore:
    """Stacking state in the hub's database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise StackingError(
                f"stacking store: {dialect} is not supported; use SQLite or PostgreSQL"
            )
        self._sql = _statements("?" if dialect == "sqlite" else "%s")

    def create_schema(self) -> None:
        """Create the tables on a database not migrated by the audit store (tests, bench)."""
        create_schema(self._engine)

    def _fail(self, exc: SQLAlchemyError, doing: str) -> StackingError:
        return StackingError(
            f"stacking store {masked(self._engine.url)}: {doing} failed "
            f"({exc.__class__.__name__}). Fix: check the database is reachable and migrated "
            "(`schakel up` migrates it; tests call create_schema())."
        )

    def load(self) -> Snapshot:
        snapshot = Snapshot()
        try:
            with self._engine.connect() as conn:
                for row in conn.execute(select(stacking_locations)).mappings():
                    snapshot.locations[row["location"]] = LocationState(
                        row["municipality"], row["locator"]
                    )
                for row in conn.execute(select(stacking_evidence)).mappings():
                    state = snapshot.locations.get(row["location"])
                    if state is not None:
                        state.evidence.append(evidence_of(row))
                for row in conn.execute(select(stacking_aliases)).mappings():
                    snapshot.aliases[row["alias"]] = row["location"]
                alerts = [alert_of(r) for r in conn.execute(select(stacking_alerts)).mappings()]
        except SQLAlchemyError as exc:
            raise self._fail(exc, "loading the stacking state") from None
        for alert in sorted(alerts, key=lambda a: (a.raised_at, a.alert_id)):
            state = snapshot.locations.get(alert.location)
            if state is not None:
                state.alert = alert  # the most recently raised alert is the current one
        for state in snapshot.locations.values():
            state.evidence.sort(key=lambda e: (e.time, e.key))
        return snapshot

    def write(self, changes: Changes) -> None:
        if not changes:
            return
        try:
            with self._engine.begin() as conn:
                self._write(conn, changes)
        except SQLAlchemyError as exc:
            raise self._fail(exc, "writing a batch of evidence") from None

    def _write(self, conn: Connection, changes: Changes) -> None:
        # Driver-level executemany with plain tuples: SQLAlchemy's per-row parameter
        # processing would cost more than the inserts (bench/stacking.py).
        sql = self._sql
        if changes.locations:
            conn.exec_driver_sql(
                sql["locations"], [(k, m, loc) for k, (m, loc) in changes.locations.items()]
            )
        if changes.evidence:
            conn.exec_driver_sql(
                sql["evidence"],
                [
                    (k, e.source, e.signal_id, e.partner_kind, e.signal_type,
                     " ".join(e.barrier_steps), to_us(e.time), e.strength)
                    for k, e in changes.evidence
                ],
            )  # fmt: skip
        if changes.expired:
            conn.exec_driver_sql(
                sql["expire"], [(k, *key.split("\x1f", 1)) for k, key in changes.expired]
            )
        if changes.aliases:
            conn.exec_driver_sql(sql["aliases"], list(changes.aliases.items()))
        if changes.dropped:
            conn.exec_driver_sql(sql["drop"], [(k,) for k in changes.dropped])
        if changes.alerts:
            rows = [alert_row(a) for a in changes.alerts.values()]
            conn.exec_driver_sql(sql["alerts"], [tuple(r[c] for c in _ALERT_COLUMNS) for r in rows])

    def unpublished(self) -> list[Alert]:
        query = (
            select(stacking_alerts)
            .where(stacking_alerts.c.published == False)  # noqa: E712 - SQL, not Python
            .order_by(stacking_alerts.c.updated_at_us, stacking_alerts.c.alert_id)
        )
        return self._alerts(query)

    def mark_published(self, alerts: list[Alert]) -> None:
        if not alerts:
            return
        try:
            with self._engine.begin() as conn:
                for alert in alerts:
                    conn.execute(
                        update(stacking_alerts)
                        .where(
                            and_(
                                stacking_alerts.c.alert_id == alert.alert_id,
                                stacking_alerts.c.signal_id == alert.signal_id,
                            )
                        )
                        .values(published=True)
                    )
        except SQLAlchemyError as exc:
            raise self._fail(exc, "marking alerts published") from None

    def alerts(
        self, *, municipality: str | None = None, min_score: float = 0.0, limit: int = 1000
    ) -> list[Alert]:
        query = select(stacking_alerts).where(stacking_alerts.c.score >= min_score)
        if municipality is not None:
            query = query.where(stacking_alerts.c.municipality == municipality)
        query = query.order_by(stacking_alerts.c.score.desc(), stacking_alerts.c.alert_id).limit(
            limit
        )
        return self._alerts(query)

    def _alerts(self, query: Any) -> list[Alert]:
        try:
            with self._engine.connect() as conn:
                return [alert_of(r) for r in conn.execute(query).mappings()]
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading alerts") from None

    def close(self) -> None:
        self._engine.dispose()


_ALERT_COLUMNS = tuple(c.name for c in stacking_alerts.c)


def _statements(mark: str) -> dict[str, str]:
    """The write statements in the driver's parameter style (``?`` or ``%s``); the upsert
    syntax (``ON CONFLICT ... DO UPDATE SET c = excluded.c``) is shared by SQLite and
    PostgreSQL."""

    def marks(n: int) -> str:
        return ", ".join([mark] * n)

    updates = ", ".join(f"{c} = excluded.{c}" for c in _ALERT_COLUMNS if c != "alert_id")
    return {
        "locations": "INSERT INTO stacking_locations (location, municipality, locator) "  # noqa: S608 - fixed names, values bound
        f"VALUES ({marks(3)}) ON CONFLICT (location) DO UPDATE SET "
        "municipality = excluded.municipality, locator = excluded.locator",
        "evidence": "INSERT INTO stacking_evidence (location, source, signal_id, partner_kind, "  # noqa: S608 - fixed names, values bound
        f"signal_type, barrier_steps, time_us, strength) VALUES ({marks(8)}) "
        "ON CONFLICT DO NOTHING",
        "expire": "DELETE FROM stacking_evidence WHERE location = "  # noqa: S608 - fixed names, values bound
        f"{mark} AND source = {mark} AND signal_id = {mark}",
        "drop": f"DELETE FROM stacking_locations WHERE location = {mark}",  # noqa: S608 - fixed names, values bound
        "aliases": f"INSERT INTO stacking_aliases (alias, location) VALUES ({marks(2)}) "  # noqa: S608 - fixed names, values bound
        "ON CONFLICT (alias) DO UPDATE SET location = excluded.location",
        "alerts": f"INSERT INTO stacking_alerts ({', '.join(_ALERT_COLUMNS)}) "  # noqa: S608 - fixed names, values bound
        f"VALUES ({marks(len(_ALERT_COLUMNS))}) ON CONFLICT (alert_id) DO UPDATE SET {updates}",
    }
