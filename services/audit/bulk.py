"""Driver-level bulk writes of the audit store: rows as tuples, straight to the database driver.

A profile of the store showed SQLAlchemy's per-row parameter processing at about a third of
its time, so the hot path — audit records, their subject-index rows and outbox entries —
skips it. Rows are built once as tuples in the column order of a fixed statement and handed to
the driver: ``executemany`` of :mod:`sqlite3` on SQLite; ``COPY ... FROM STDIN`` of psycopg 3
on PostgreSQL (for the outbox, whose insert must skip known exchange ids, psycopg's
``executemany`` of ``INSERT ... ON CONFLICT DO NOTHING``, which it pipelines).

Everything runs on the driver connection of the store's SQLAlchemy transaction, so it commits
or rolls back with the rest. Driver errors are re-raised as SQLAlchemy's own (without
parameters), so :func:`~services.audit.errors.translated` explains them like any other.
Values get what SQLAlchemy's column types would have done to them: on SQLite timestamps become
the same fixed-width UTC text SQLAlchemy writes (``YYYY-MM-DD HH:MM:SS.ffffff``), so queries
through SQLAlchemy compare and read them as before; psycopg adapts aware datetimes itself.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect

from services.audit.errors import AuditStoreError
from services.audit.rows import AUDIT_COLUMNS, AuditRow

RECORD_COLUMNS = (*AUDIT_COLUMNS, "timestamp", "seq", "prev_seq", "chain_hash")
"""The ``audit_records`` columns of a row from :func:`record_rows`, in its order (the order of
the insert statements below, which spell them out)."""

SUBJECT_COLUMNS = ("pseudonym", "seq")
"""The ``audit_subjects`` columns of a row from :func:`subject_rows`."""

OUTBOX_COLUMNS = (
    "exchange_id",
    "recipient",
    "key",
    "value",
    "created_at",
    "kafka_partition",
    "kafka_offset",
    "consumed",
)
"""The ``feed_outbox`` columns of a row from :meth:`BulkWriter.outbox_rows`."""

_HEAD = "SELECT seq, chain_hash FROM audit_records ORDER BY seq DESC LIMIT 1"


def record_rows(
    rows: Sequence[AuditRow], first_seq: int, hashes: Iterable[bytes], writer: BulkWriter
) -> list[tuple[Any, ...]]:
    """The ``audit_records`` tuples (:data:`RECORD_COLUMNS`) of ``rows`` numbered from
    ``first_seq``, each with its chain hash from ``hashes`` and ``prev_seq`` one below its
    ``seq`` (the store numbers records without gaps)."""
    moment = writer.moment
    seq = first_seq
    values: list[tuple[Any, ...]] = []
    append = values.append
    for row, chain_hash in zip(rows, hashes, strict=False):  # hashes may be endless
        append((*row.columns, moment(row.timestamp), seq, seq - 1, chain_hash))
        seq += 1
    return values


def subject_rows(rows: Sequence[AuditRow], first_seq: int) -> list[tuple[str, int]]:
    """The ``audit_subjects`` tuples ``(pseudonym, seq)`` of ``rows`` numbered from
    ``first_seq``."""
    return [
        (pseudonym, seq) for seq, row in enumerate(rows, first_seq) for pseudonym in row.subjects
    ]


class BulkWriter(ABC):
    """The driver-level reads and writes of the audit hot path on one kind of database; use
    :func:`bulk_writer` for the one of an engine's dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error

    @contextmanager
    def cursor(self, connection: Connection) -> Iterator[Any]:
        """A driver cursor in ``connection``'s transaction; driver errors come out as
        SQLAlchemy errors (typed ``Any``: a :mod:`sqlite3` or a psycopg cursor)."""
        driver_connection: Any = connection.connection.driver_connection
        cursor = driver_connection.cursor()
        try:
            yield cursor
        except self._driver_error as error:
            raise sa_exc.DBAPIError.instance(
                None, None, error, self._driver_error, hide_parameters=True, dialect=self._dialect
            ) from None
        finally:
            cursor.close()

    def moment(self, value: datetime) -> Any:
        """A UTC datetime as the driver should receive it."""
        return value

    def lock(self, cursor: Any) -> None:
        """Make other writers of audit records wait until this transaction ends, so sequence
        numbers grow in commit order (a no-op where the transaction already locks)."""
        return

    def head(self, cursor: Any) -> tuple[int, bytes] | None:
        """``(seq, chain_hash)`` of the newest record, ``None`` for an empty log."""
        cursor.execute(_HEAD)
        found = cursor.fetchone()
        return None if found is None else (int(found[0]), bytes(found[1]))

    @abstractmethod
    def known(self, cursor: Any, record_ids: Sequence[str]) -> set[str]:
        """Which of ``record_ids`` are stored already."""

    @abstractmethod
    def insert_records(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert :func:`record_rows` tuples (none of them stored yet)."""

    @abstractmethod
    def insert_subjects(self, cursor: Any, rows: Sequence[tuple[str, int]]) -> None:
        """Insert :func:`subject_rows` tuples."""

    @abstractmethod
    def insert_outbox(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        """Insert :func:`~services.audit.rows.outbox_row` rows, skipping exchange ids that
        are stored already."""

    def outbox_rows(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """:func:`~services.audit.rows.outbox_row` rows as :data:`OUTBOX_COLUMNS` tuples."""
        moment = self.moment
        return [
            (
                row["exchange_id"],
                row["recipient"],
                row["key"],
                row["value"],
                moment(row["created_at"]),
                row["kafka_partition"],
                row["kafka_offset"],
                row["consumed"],
            )
            for row in rows
        ]


class SqliteWriter(BulkWriter):
    """:class:`BulkWriter` on :mod:`sqlite3` (the store's ``BEGIN IMMEDIATE`` is the lock)."""

    _known = (
        "SELECT record_id FROM audit_records WHERE record_id IN (SELECT value FROM json_each(?))"
    )
    _insert_records = (
        "INSERT INTO audit_records (record_id, action, result, object, signal_id, origin, "
        "recipient, covenant_id, rule_id, body, timestamp, seq, prev_seq, chain_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    _insert_subjects = "INSERT INTO audit_subjects (pseudonym, seq) VALUES (?, ?)"
    _insert_outbox = (
        "INSERT INTO feed_outbox (exchange_id, recipient, key, value, created_at, "
        "kafka_partition, kafka_offset, consumed) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (exchange_id) DO NOTHING"
    )

    def moment(self, value: datetime) -> Any:
        # "YYYY-MM-DD HH:MM:SS.ffffff" of a UTC datetime, without its "+00:00"
        return value.isoformat(" ", "microseconds")[:26]

    def known(self, cursor: Any, record_ids: Sequence[str]) -> set[str]:
        cursor.execute(self._known, (orjson.dumps(record_ids).decode(),))
        return {record_id for (record_id,) in cursor.fetchall()}

    def insert_records(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        cursor.executemany(self._insert_records, rows)

    def insert_subjects(self, cursor: Any, rows: Sequence[tuple[str, int]]) -> None:
        cursor.executemany(self._insert_subjects, rows)

    def insert_outbox(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        cursor.executemany(self._insert_outbox, self.outbox_rows(rows))


class PostgresWriter(BulkWriter):
    """:class:`BulkWriter` on psycopg 3: ``COPY`` for new rows, a table lock for order."""

    _lock = "LOCK TABLE audit_records IN SHARE ROW EXCLUSIVE MODE"
    _known = "SELECT record_id FROM audit_records WHERE record_id = ANY(%s)"
    _copy_records = (
        "COPY audit_records (record_id, action, result, object, signal_id, origin, recipient, "
        "covenant_id, rule_id, body, timestamp, seq, prev_seq, chain_hash) FROM STDIN"
    )
    _copy_subjects = "COPY audit_subjects (pseudonym, seq) FROM STDIN"
    _insert_outbox = (
        "INSERT INTO feed_outbox (exchange_id, recipient, key, value, created_at, "
        "kafka_partition, kafka_offset, consumed) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (exchange_id) DO NOTHING"
    )

    def lock(self, cursor: Any) -> None:
        cursor.execute(self._lock)

    def known(self, cursor: Any, record_ids: Sequence[str]) -> set[str]:
        cursor.execute(self._known, (list(record_ids),))
        return {record_id for (record_id,) in cursor.fetchall()}

    def insert_records(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        _copy(cursor, self._copy_records, rows)

    def insert_subjects(self, cursor: Any, rows: Sequence[tuple[str, int]]) -> None:
        _copy(cursor, self._copy_subjects, rows)

    def insert_outbox(self, cursor: Any, rows: Sequence[dict[str, Any]]) -> None:
        cursor.executemany(self._insert_outbox, self.outbox_rows(rows))


def bulk_writer(dialect: Dialect, url: str) -> BulkWriter:
    """The :class:`BulkWriter` for ``dialect``: SQLite, or PostgreSQL through psycopg 3
    (``COPY`` needs it); ``url`` (masked) names the database in the error otherwise."""
    if dialect.name == "sqlite":
        return SqliteWriter(dialect)
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        return PostgresWriter(dialect)
    raise AuditStoreError(
        f"audit database {url}: the {dialect.name}+{dialect.driver} driver is not supported. "
        "Fix: use sqlite:// or postgresql+psycopg:// (pip install 'psycopg[binary]')."
    )


def _copy(cursor: Any, statement: str, rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    with cursor.copy(statement) as copy:
        write_row = copy.write_row
        for row in rows:
            write_row(row)
