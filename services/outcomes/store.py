"""The outcome store: the matching index in the hub's database (SQLite or PostgreSQL).

One :meth:`SqlOutcomeStore.write` is one transaction; every insert is ``ON CONFLICT DO
NOTHING`` on the entry's key, so a replayed batch changes nothing (each approval signal is a
row of its own; a later one never overwrites an earlier one). The worker is the single writer: it writes a
batch's entries before it decides returns from the stored state, and before it commits its
offsets, so a crash at any point re-reads signals that change nothing and decides the same
pairs under the same ids.

Look-ups go by hub-internal pseudonym and time: an outcome's earlier signals are a range scan
of ``outcome_signal_locations`` per location (its primary key is ``(location, time, …)``).
Outcomes are few, so the store keeps the set of locations that have one in memory and asks
the database about a new signal only when one of its locations is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

from services.core.outcomes.entries import (
    ApprovalEntry,
    Entries,
    OutcomeEntry,
    SignalEntry,
    arrival,
)
from services.database.engine import masked
from services.database.tables.outcomes import create_schema
from services.outcomes.errors import OutcomeError
from services.outcomes.rows import (
    APPROVAL_COLUMNS,
    EVENT_COLUMNS,
    SIGNAL_COLUMNS,
    approval_of,
    approval_row,
    event_of,
    event_row,
    signal_of,
    signal_row,
    to_us,
)

Pair = tuple[OutcomeEntry, SignalEntry]
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Purged:
    """Rows deleted by one purge (storage limitation: each row's ``keep_until`` passed)."""

    signals: int
    outcomes: int
    approvals: int


class OutcomeStore(Protocol):
    """Where the matching index lives (SQL in the hub, memory in tests)."""

    def write(self, entries: Entries) -> None:
        """Store a batch's entries in one transaction; known ones are skipped."""
        ...

    def earlier_signals(self, outcomes: Sequence[OutcomeEntry], window: timedelta) -> list[Pair]:
        """Every (outcome, signal) with the signal at one of the outcome's locations, its
        time in ``[outcome.time - window, outcome.time]`` and received by the hub before the
        outcome."""
        ...

    def later_outcomes(self, signals: Sequence[SignalEntry], window: timedelta) -> list[Pair]:
        """Every (outcome, signal) with the outcome at one of the signal's locations, its
        time in ``[signal.time, signal.time + window]`` and **received by the hub after the
        signal** — a signal read late still finds its outcome; one received after the
        outcome (a probe, however backdated) does not."""
        ...

    def outcomes(self, keys: Iterable[tuple[str, str]]) -> list[OutcomeEntry]:
        """The stored outcomes with these (source, signal id) keys, locations included."""
        ...

    def approvals(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str, str], list[ApprovalEntry]]:
        """Every approval of the outcomes with these keys, by (source, signal id, approver),
        in the order the hub received them."""
        ...

    def purge(self, now: datetime) -> Purged:
        """Delete every entry whose ``keep_until`` lies before ``now``."""
        ...

    def signals(self) -> Iterator[SignalEntry]:
        """Every indexed signal (without locations), for the indicators."""
        ...

    def signal_keys_at(self, locations: Iterable[str]) -> dict[tuple[str, str], set[str]]:
        """(source, signal id) -> the given locations each indexed signal is at."""
        ...

    def all_outcomes(self) -> list[OutcomeEntry]:
        """Every stored outcome with its locations, for the indicators."""
        ...

    def stackable_locations(self) -> dict[tuple[str, str], set[str]]:
        """(source, signal id) -> locations, of every signal a stacking rule let the hub use
        (the stacking replay)."""
        ...

    def close(self) -> None: ...


class SqlOutcomeStore:
    """:class:`OutcomeStore` on a SQLAlchemy engine (the audit database)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        dialect = engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            raise OutcomeError(
                f"outcome store: {dialect} is not supported. Fix: point SCHAKEL_DATABASE_URL at "
                "SQLite or PostgreSQL"
            )
        self._mark = "?" if dialect == "sqlite" else "%s"
        self._outcome_locations: set[str] | None = None

    def create_schema(self) -> None:
        """Create the tables on a database not migrated by the audit store (tests, bench)."""
        create_schema(self._engine)

    def _fail(self, exc: SQLAlchemyError, doing: str) -> OutcomeError:
        return OutcomeError(
            f"outcome store {masked(self._engine.url)}: {doing} failed "
            f"({exc.__class__.__name__}). Fix: check the database is reachable and migrated "
            "(`schakel up` migrates it; tests call create_schema())."
        )

    def _insert(self, table: str, columns: Sequence[str]) -> str:
        marks = ", ".join([self._mark] * len(columns))
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608 - fixed names, values bound
            "ON CONFLICT DO NOTHING"
        )

    def write(self, entries: Entries) -> None:
        if not entries:
            return
        location_columns = ("location", "time_us", "source", "signal_id", "keep_until_us")
        try:
            with self._engine.begin() as conn:
                if entries.signals:
                    conn.exec_driver_sql(
                        self._insert("outcome_signals", SIGNAL_COLUMNS),
                        [signal_row(e) for e in entries.signals],
                    )
                    conn.exec_driver_sql(
                        self._insert("outcome_signal_locations", location_columns),
                        [
                            (loc, to_us(e.time), e.source, e.signal_id, to_us(e.keep_until))
                            for e in entries.signals
                            for loc in e.locations
                        ],
                    )
                if entries.outcomes:
                    conn.exec_driver_sql(
                        self._insert("outcome_events", EVENT_COLUMNS),
                        [event_row(o) for o in entries.outcomes],
                    )
                    conn.exec_driver_sql(
                        self._insert("outcome_event_locations", location_columns),
                        [
                            (loc, to_us(o.time), o.source, o.signal_id, to_us(o.keep_until))
                            for o in entries.outcomes
                            for loc in o.locations
                        ],
                    )
                if entries.approvals:
                    conn.exec_driver_sql(
                        self._insert("outcome_approvals", APPROVAL_COLUMNS),
                        [approval_row(a) for a in entries.approvals],
                    )
        except SQLAlchemyError as exc:
            raise self._fail(exc, "writing a batch of outcome entries") from None
        if self._outcome_locations is not None:
            self._outcome_locations.update(loc for o in entries.outcomes for loc in o.locations)

    def earlier_signals(self, outcomes: Sequence[OutcomeEntry], window: timedelta) -> list[Pair]:
        if not outcomes:
            return []
        query = text(
            "SELECT s.* FROM outcome_signal_locations l JOIN outcome_signals s "
            "ON s.source = l.source AND s.signal_id = l.signal_id "
            "WHERE l.location = :location AND l.time_us >= :low AND l.time_us <= :high "
            "AND s.received_us < :received"
        )
        pairs: list[Pair] = []
        try:
            with self._engine.connect() as conn:
                for outcome in outcomes:
                    seen: set[tuple[str, str]] = set()
                    bounds = {
                        "low": to_us(outcome.time - window),
                        "high": to_us(outcome.time),
                        "received": to_us(arrival(outcome)),
                    }
                    for location in outcome.locations:
                        rows = conn.execute(query, {"location": location, **bounds})
                        for row in rows.mappings():
                            found = signal_of(row)
                            if found.key not in seen:
                                seen.add(found.key)
                                pairs.append((outcome, found))
        except SQLAlchemyError as exc:
            raise self._fail(exc, "matching outcomes to earlier signals") from None
        return pairs

    def later_outcomes(self, signals: Sequence[SignalEntry], window: timedelta) -> list[Pair]:
        known = self._known_outcome_locations()
        wanted = [s for s in signals if known.intersection(s.locations)]
        if not wanted:
            return []
        query = text(
            "SELECT l.source, l.signal_id FROM outcome_event_locations l JOIN outcome_events e "
            "ON e.source = l.source AND e.signal_id = l.signal_id "
            "WHERE l.location = :location AND l.time_us >= :low AND l.time_us <= :high "
            "AND e.received_us > :received"
        )
        found: list[tuple[SignalEntry, tuple[str, str]]] = []
        try:
            with self._engine.connect() as conn:
                for entry in wanted:
                    bounds = {
                        "low": to_us(entry.time),
                        "high": to_us(entry.time + window),
                        "received": to_us(arrival(entry)),
                    }
                    for location in known.intersection(entry.locations):
                        rows = conn.execute(query, {"location": location, **bounds})
                        found += [(entry, (r[0], r[1])) for r in rows]
        except SQLAlchemyError as exc:
            raise self._fail(exc, "matching signals to later outcomes") from None
        outcomes = {o.key: o for o in self.outcomes({key for _, key in found})}
        seen: set[tuple[str, str, str, str]] = set()
        pairs: list[Pair] = []
        for entry, key in found:
            outcome = outcomes.get(key)
            if outcome is not None and (*key, *entry.key) not in seen:
                seen.add((*key, *entry.key))
                pairs.append((outcome, entry))
        return pairs

    def _known_outcome_locations(self) -> set[str]:
        if self._outcome_locations is None:
            try:
                with self._engine.connect() as conn:
                    rows = conn.execute(
                        text("SELECT DISTINCT location FROM outcome_event_locations")
                    )
                    self._outcome_locations = {r[0] for r in rows}
            except SQLAlchemyError as exc:
                raise self._fail(exc, "reading the outcome locations") from None
        return self._outcome_locations

    def outcomes(self, keys: Iterable[tuple[str, str]]) -> list[OutcomeEntry]:
        wanted = sorted(set(keys))
        if not wanted:
            return []
        found: list[OutcomeEntry] = []
        try:
            with self._engine.connect() as conn:
                for source, signal_id in wanted:
                    row = (
                        conn.execute(
                            text(
                                "SELECT * FROM outcome_events "
                                "WHERE source = :source AND signal_id = :signal_id"
                            ),
                            {"source": source, "signal_id": signal_id},
                        )
                        .mappings()
                        .first()
                    )
                    if row is None:
                        continue
                    locations = conn.execute(
                        text(
                            "SELECT location FROM outcome_event_locations "
                            "WHERE source = :source AND signal_id = :signal_id"
                        ),
                        {"source": source, "signal_id": signal_id},
                    )
                    found.append(event_of(row, tuple(sorted(r[0] for r in locations))))
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading outcomes") from None
        return found

    def approvals(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str, str], list[ApprovalEntry]]:
        wanted = sorted(set(keys))
        found: dict[tuple[str, str, str], list[ApprovalEntry]] = {}
        if not wanted:
            return found
        query = text(
            "SELECT * FROM outcome_approvals "
            "WHERE outcome_source = :source AND outcome_signal_id = :signal_id "
            "ORDER BY received_us, signal_id"
        )
        try:
            with self._engine.connect() as conn:
                for source, signal_id in wanted:
                    for row in conn.execute(query, {"source": source, "signal_id": signal_id}):
                        approval = approval_of(row._mapping)
                        found.setdefault(approval.key, []).append(approval)
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading approvals") from None
        return found

    def purge(self, now: datetime) -> Purged:
        cutoff = {"cutoff": to_us(now)}
        try:
            with self._engine.begin() as conn:
                signals = _delete(conn, "outcome_signals", cutoff)
                _delete(conn, "outcome_signal_locations", cutoff)
                outcomes = _delete(conn, "outcome_events", cutoff)
                _delete(conn, "outcome_event_locations", cutoff)
                approvals = conn.execute(
                    text(
                        "DELETE FROM outcome_approvals WHERE NOT EXISTS (SELECT 1 FROM "
                        "outcome_events e WHERE e.source = outcome_approvals.outcome_source "
                        "AND e.signal_id = outcome_approvals.outcome_signal_id)"
                    )
                ).rowcount
        except SQLAlchemyError as exc:
            raise self._fail(exc, "purging expired entries") from None
        self._outcome_locations = None  # reloaded on next use
        return Purged(signals, outcomes, approvals)

    def signals(self) -> Iterator[SignalEntry]:
        try:
            with self._engine.connect() as conn:
                rows = conn.execution_options(stream_results=True, yield_per=5000).execute(
                    text("SELECT * FROM outcome_signals")
                )
                for row in rows.mappings():
                    yield signal_of(row)
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading the indexed signals") from None

    def signal_keys_at(self, locations: Iterable[str]) -> dict[tuple[str, str], set[str]]:
        wanted = sorted(set(locations))
        found: dict[tuple[str, str], set[str]] = {}
        try:
            with self._engine.connect() as conn:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    names = ", ".join(f":l{i}" for i in range(len(chunk)))
                    rows = conn.execute(
                        text(
                            "SELECT location, source, signal_id FROM outcome_signal_locations "  # noqa: S608 - bound parameters only
                            f"WHERE location IN ({names})"
                        ),
                        {f"l{i}": v for i, v in enumerate(chunk)},
                    )
                    for location, source, signal_id in rows:
                        found.setdefault((source, signal_id), set()).add(location)
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading the signals at outcome locations") from None
        return found

    def all_outcomes(self) -> list[OutcomeEntry]:
        try:
            with self._engine.connect() as conn:
                located: dict[tuple[str, str], list[str]] = {}
                for location, source, signal_id in conn.execute(
                    text("SELECT location, source, signal_id FROM outcome_event_locations")
                ):
                    located.setdefault((source, signal_id), []).append(location)
                return [
                    event_of(row, tuple(sorted(located.get((row["source"], row["signal_id"]), ()))))
                    for row in conn.execute(text("SELECT * FROM outcome_events")).mappings()
                ]
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading the outcomes") from None

    def stackable_locations(self) -> dict[tuple[str, str], set[str]]:
        found: dict[tuple[str, str], set[str]] = {}
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT l.location, l.source, l.signal_id FROM outcome_signal_locations l "
                        "JOIN outcome_signals s ON s.source = l.source AND "
                        "s.signal_id = l.signal_id WHERE s.stackable"
                    )
                )
                for location, source, signal_id in rows:
                    found.setdefault((source, signal_id), set()).add(location)
        except SQLAlchemyError as exc:
            raise self._fail(exc, "reading the stackable signals") from None
        return found

    def close(self) -> None:
        self._engine.dispose()


def _delete(conn: Connection, table: str, cutoff: dict[str, Any]) -> int:
    result = conn.execute(text(f"DELETE FROM {table} WHERE keep_until_us < :cutoff"), cutoff)  # noqa: S608 - fixed table names
    return int(result.rowcount)
