"""The coverage facts, durable in the hub's database (SQLite or PostgreSQL).

``coverage_facts`` holds one row per counted signal: source partner and signal id (the key,
so ingesting the same signal twice counts it once), month, municipality code, signal type and
category. No identifier, no payload. Counts are ``GROUP BY`` queries over it, so they are
always consistent with the facts stored. Alembic revision ``0007`` creates the table;
:meth:`SqlCoverageStore.create_schema` also creates it if missing, for a database used
without the audit store's migrations.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects import postgresql, sqlite

from services.core.coverage.errors import CoverageError
from services.core.coverage.facts import CATEGORIES, Category, Fact
from services.core.coverage.release import CellKey
from services.database.engine import WRITE_TRANSACTION
from services.database.tables.coverage import coverage_facts, metadata


class CoverageStore(Protocol):
    """Where coverage facts are kept (SQL in the hub, memory in tests)."""

    def add(self, facts: Sequence[Fact]) -> int:
        """Store facts in one transaction; return how many were new (known ones are skipped)."""
        ...

    def counts(self, months: Sequence[str]) -> Counter[CellKey]:
        """Facts per (municipality, month, category) in ``months``."""
        ...

    def months(self) -> list[str]:
        """Months that have facts, oldest first."""
        ...


class SqlCoverageStore:
    """:class:`CoverageStore` on a SQLAlchemy engine (the audit database)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def add(self, facts: Sequence[Fact]) -> int:
        if not facts:
            return 0
        rows = list({(f.origin, f.signal_id): _row(f) for f in facts}.values())
        dialect = self.engine.dialect.name
        insert: Any
        if dialect == "postgresql":
            insert = postgresql.insert(coverage_facts).on_conflict_do_nothing()
        elif dialect == "sqlite":
            insert = sqlite.insert(coverage_facts).on_conflict_do_nothing()
        else:
            raise CoverageError(
                f"the coverage store runs on SQLite or PostgreSQL, not {dialect}; "
                "point SCHAKEL_DATABASE_URL at one of those"
            )
        c = coverage_facts.c
        with self.engine.connect() as connection, _write(connection):
            known: set[tuple[str, str]] = set()
            for start in range(0, len(rows), 400):
                chunk = rows[start : start + 400]
                query = select(c.origin, c.signal_id).where(
                    c.signal_id.in_([r["signal_id"] for r in chunk])
                )
                known.update((o, s) for o, s in connection.execute(query))
            fresh = [r for r in rows if (r["origin"], r["signal_id"]) not in known]
            if fresh:
                connection.execute(insert, fresh)  # on conflict: a concurrent writer won
            return len(fresh)

    def counts(self, months: Sequence[str]) -> Counter[CellKey]:
        c = coverage_facts.c
        query = (
            select(c.municipality, c.month, c.category, func.count())
            .where(c.month.in_(list(months)))
            .group_by(c.municipality, c.month, c.category)
        )
        found: Counter[CellKey] = Counter()
        with self.engine.connect() as connection:
            for municipality, month, category, count in connection.execute(query):
                if category in CATEGORIES:
                    found[(municipality, month, _category(category))] = int(count)
        return found

    def months(self) -> list[str]:
        query = select(coverage_facts.c.month).distinct().order_by(coverage_facts.c.month)
        with self.engine.connect() as connection:
            return [str(m) for m in connection.execute(query).scalars()]


@contextmanager
def _write(connection: Connection) -> Iterator[None]:
    """A write transaction: ``BEGIN IMMEDIATE`` on SQLite, so it waits for other writers (the
    router, the stacking worker) instead of failing when it upgrades from reading."""
    connection.execution_options(**{WRITE_TRANSACTION: True})
    with connection.begin():
        yield


def _row(fact: Fact) -> dict[str, str]:
    return {
        "origin": fact.origin,
        "signal_id": fact.signal_id,
        "month": fact.month,
        "municipality": fact.municipality,
        "signal_type": fact.signal_type,
        "category": fact.category,
    }


def _category(text: str) -> Category:
    return "reports" if text == "reports" else "indicators"
