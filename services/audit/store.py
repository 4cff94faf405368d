"""The audit store on a SQL database (SQLite or PostgreSQL), through SQLAlchemy Core.

Writes are idempotent: audit records whose ``record_id`` is stored already are looked up
first and skipped (inside the write lock, so the answer holds until the commit); only the new
ones are chained and inserted, with their subject-index rows. Outbox entries go in with
``INSERT ... ON CONFLICT DO NOTHING``. These hot-path writes go straight to the database
driver as tuples (:mod:`services.audit.bulk`: ``executemany`` on SQLite, ``COPY`` on
PostgreSQL), everything else through SQLAlchemy Core. One :meth:`record` call is one
transaction.

Sequence numbers must grow in commit order, or a reader paging with ``after_seq`` (the hash
chain) could pass a number whose row commits later. SQLite has one writer at a time, so that
holds; on PostgreSQL :meth:`record` takes a table lock that only other writers of audit
records wait for (readers do not). Within one process, writers to SQLite also queue on a lock
of the store instead of polling the database's busy timeout. The numbers themselves are
assigned by the store (the head's plus one, as the chain needs them before the insert), never
by SQLite's rowid or a PostgreSQL sequence, so both databases number alike.

The schema is created and upgraded by Alembic migrations (:mod:`services.database.migrate`).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Insert,
    and_,
    bindparam,
    false,
    func,
    inspect,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from services.audit.bulk import BulkWriter, bulk_writer, record_rows, subject_rows
from services.audit.chain import GENESIS, ChainRecord, chained, unique_rows
from services.audit.checkpoint import Checkpoint, whole_seconds
from services.audit.checkpointer import Checkpointer
from services.audit.errors import AuditStoreError, translated
from services.audit.index_reading import BELOW_ALL, IndexedPage, IndexReader
from services.audit.model import AuditStore, OutboxEntry
from services.audit.retention import PurgeCommitment, PurgePlan, purge_record, signed_purge
from services.audit.rows import (
    AuditRow,
    audit_row,
    check_filters,
    check_limit,
    outbox_entry,
    outbox_row,
    utc,
)
from services.audit.upgrade import adopt_unversioned
from services.core.progress import Progress, silent
from services.database.engine import WRITE_TRANSACTION, is_memory_sqlite, make_engine, masked
from services.database.errors import DatabaseError
from services.database.migrate import upgrade_schema
from services.database.tables.audit import (
    audit_checkpoints,
    audit_purges,
    audit_records,
    audit_subjects,
    feed_outbox,
)

__all__ = ["AuditStore", "OutboxEntry", "SqlAuditStore"]

_SUPPORTED = ("sqlite", "postgresql")
PURGE_CHUNK = 50_000
"""Records deleted per statement by a purge (all in its one transaction)."""
_LOCK_AUDIT_RECORDS = text("LOCK TABLE audit_records IN SHARE ROW EXCLUSIVE MODE")

_record_page = (
    select(audit_records.c.seq, audit_records.c.body)
    .where(audit_records.c.seq > bindparam("after_seq"))
    .order_by(audit_records.c.seq)
    .limit(bindparam("page_limit"))
)
_subject_page = (
    select(audit_records.c.seq, audit_records.c.body)
    .join(audit_subjects, audit_subjects.c.seq == audit_records.c.seq)
    .where(
        audit_subjects.c.pseudonym == bindparam("pseudonym"),
        audit_subjects.c.seq > bindparam("after_seq"),
    )
    .order_by(audit_subjects.c.seq)
    .limit(bindparam("page_limit"))
)
_chain_page = (
    select(
        audit_records.c.seq,
        audit_records.c.prev_seq,
        audit_records.c.record_id,
        audit_records.c.body,
        audit_records.c.chain_hash,
    )
    .where(audit_records.c.seq > bindparam("after_seq"))
    .order_by(audit_records.c.seq)
    .limit(bindparam("page_limit"))
)
_chain_head = (
    select(audit_records.c.seq, audit_records.c.chain_hash)
    .order_by(audit_records.c.seq.desc())
    .limit(1)
)
_checkpoint_columns = (
    audit_checkpoints.c.seq,
    audit_checkpoints.c.chain_hash,
    audit_checkpoints.c.created_at,
    audit_checkpoints.c.key_id,
    audit_checkpoints.c.signature,
)
_all_checkpoints = select(*_checkpoint_columns).order_by(audit_checkpoints.c.seq)
_last_checkpoint = select(*_checkpoint_columns).order_by(audit_checkpoints.c.seq.desc()).limit(1)
_purge_columns = (
    audit_purges.c.seq,
    audit_purges.c.chain_hash,
    audit_purges.c.records,
    audit_purges.c.first_timestamp,
    audit_purges.c.last_timestamp,
    audit_purges.c.created_at,
    audit_purges.c.key_id,
    audit_purges.c.signature,
)
_PURGE_NAMES = tuple(column.name for column in _purge_columns)
_CHECKPOINT_NAMES = tuple(column.name for column in _checkpoint_columns)
_all_purges = select(*_purge_columns).order_by(audit_purges.c.seq)
_first_young = select(func.min(audit_records.c.seq)).where(
    audit_records.c.timestamp >= bindparam("before")
)
_prefix = select(
    func.count(),
    func.max(audit_records.c.seq),
    func.min(audit_records.c.timestamp),
    func.max(audit_records.c.timestamp),
).where(audit_records.c.seq <= bindparam("up_to"))
_hash_at = select(audit_records.c.chain_hash).where(audit_records.c.seq == bindparam("at_seq"))
_set_produced = (
    update(feed_outbox)
    .where(feed_outbox.c.exchange_id == bindparam("p_id"), feed_outbox.c.consumed == false())
    .values(kafka_partition=bindparam("p_partition"), kafka_offset=bindparam("p_offset"))
)


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    """Serialise schema creation on one SQLite file across threads and processes.

    Two hubs creating a new SQLite database at the same moment race on its journal-mode
    switch and DDL in ways the busy timeout does not always cover (seen once in about a dozen
    runs of the concurrent-start test); an exclusive lock file beside the database makes the
    second wait for the first. PostgreSQL uses an advisory lock in the migration instead.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url) or not url.database:
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".schema-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_IN_CHUNK = 500
"""Ids per ``IN (...)`` list (SQLite allows 32,766 parameters; this stays far below)."""


class SqlAuditStore:
    """:class:`~services.audit.model.AuditStore` on a SQLAlchemy engine.

    Use an engine from :func:`~services.database.engine.make_engine` (it configures SQLite and
    keeps parameters out of error messages). The store is safe to share between threads.
    Every record is chained onto the previous one (:mod:`services.audit.chain`) in the
    transaction that inserts it; with a signer in ``checkpointer`` the store also signs
    checkpoints of the chain head and publishes them to its witness.
    """

    def __init__(self, engine: Engine, checkpointer: Checkpointer | None = None) -> None:
        dialect = engine.dialect.name
        if dialect not in _SUPPORTED:
            raise AuditStoreError(
                f"audit database {masked(engine.url)}: {dialect} is not supported. "
                "Fix: use SQLite or PostgreSQL."
            )
        self._engine = engine
        self._checkpointer = checkpointer or Checkpointer()
        self._url = masked(engine.url)
        self._postgresql = dialect == "postgresql"
        self._closed = False
        self._bulk: BulkWriter = bulk_writer(engine.dialect, self._url)
        self._index = IndexReader(dialect)
        self._insert_checkpoint = _insert_new(dialect, audit_checkpoints.c.seq)
        write_lock: AbstractContextManager[object] = nullcontext()
        read_lock: AbstractContextManager[object] = nullcontext()
        if dialect == "sqlite":
            write_lock = threading.Lock()
            if is_memory_sqlite(engine.url):  # one shared connection: one user at a time
                read_lock = write_lock
        self._write_lock = write_lock
        self._read_lock = read_lock

    @classmethod
    def open(
        cls, url: str | None = None, checkpointer: Checkpointer | None = None
    ) -> SqlAuditStore:
        """A store on :func:`make_engine(url) <services.database.engine.make_engine>`, with its
        tables created if missing."""
        store = cls(make_engine(url), checkpointer)
        try:
            store.create_schema()
        except DatabaseError:
            store.close()
            raise
        return store

    @property
    def url(self) -> str:
        """The database URL with the password masked."""
        return self._url

    def create_schema(self) -> None:
        """Create the audit tables, or upgrade them to the newest schema: ``alembic upgrade
        head`` in one write transaction (:func:`~services.database.migrate.upgrade_schema`; a
        database made before migrations is adopted first)."""
        with (
            _schema_lock(self._engine),
            self._transaction("creating or upgrading the audit tables", write=True) as connection,
        ):
            upgrade_schema(connection, self._url, adopt_unversioned)

    def record(self, audit: Sequence[Mapping[str, Any]], outbox: Sequence[OutboxEntry]) -> int:
        return self.record_rows([audit_row(record) for record in audit], outbox)

    def record_rows(self, audit: Sequence[AuditRow], outbox: Sequence[OutboxEntry]) -> int:
        rows = unique_rows(audit)
        entries = [outbox_row(entry) for entry in outbox]
        if not rows and not entries:
            self._check_open()
            self._checkpointer.committed(None)  # retry a checkpoint the witness missed
            return 0
        new = 0
        made: Checkpoint | None = None
        bulk = self._bulk
        with self._transaction("recording audit records", write=True) as connection:
            with bulk.cursor(connection) as cursor:
                if rows:
                    bulk.lock(cursor)
                    new, head = self._append(cursor, rows)
                if entries:
                    bulk.insert_outbox(cursor, entries)
            if new:
                made = self._checkpoint_if_due(connection, head)
        self._checkpointer.committed(made)
        return new

    def checkpoint(self) -> Checkpoint | None:
        """Sign the chain head now if records came after the last checkpoint (on shutdown, or
        from a timer of an idle hub); return the new checkpoint, if any."""
        made: Checkpoint | None = None
        if self._checkpointer.enabled:
            with self._transaction("writing an audit checkpoint", write=True) as connection:
                if self._postgresql:
                    connection.execute(_LOCK_AUDIT_RECORDS)
                head = connection.execute(_chain_head).one_or_none()
                if head is not None:
                    made = self._checkpoint_if_due(connection, (head[0], head[1]), force=True)
        self._checkpointer.committed(made)
        return made

    def chain(self, *, after_seq: int = 0, limit: int = 10_000) -> list[ChainRecord]:
        """Records above ``after_seq`` as the hash chain sees them (stored body text and
        hashes), in ``seq`` order: what :mod:`services.audit.verify` checks."""
        check_limit(limit)
        params = {"after_seq": after_seq, "page_limit": limit}
        with self._transaction("reading the audit hash chain") as connection:
            rows = connection.execute(_chain_page, params).all()
        return [
            ChainRecord(seq, prev, rid, body, bytes(h or b"")) for seq, prev, rid, body, h in rows
        ]

    def indexed_chain(
        self, *, after_seq: int = 0, limit: int = 10_000, subjects_after: int = BELOW_ALL
    ) -> IndexedPage:
        """Like :meth:`chain`, each record with its stored searchable columns and subject-index
        pseudonyms (:attr:`ChainRecord.columns`, :attr:`ChainRecord.subjects`), which
        verification compares with the body; and the ``seq`` of index rows above
        ``subjects_after``, up to the page's last record, that have no record
        (:mod:`services.audit.index_reading`)."""
        check_limit(limit)
        with (
            self._transaction("reading the audit hash chain") as connection,
            self._bulk.cursor(connection) as cursor,
        ):
            return self._index.page(cursor, after_seq, limit, subjects_after)

    def index_orphans(self, *, after_seq: int, limit: int = 100) -> list[int]:
        """Up to ``limit`` ``seq`` above ``after_seq`` that the subject index lists but no
        record has, ascending (after the last page of :meth:`indexed_chain`)."""
        check_limit(limit)
        with (
            self._transaction("reading the audit subject index") as connection,
            self._bulk.cursor(connection) as cursor,
        ):
            return self._index.tail_orphans(cursor, after_seq, limit)

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        with self._transaction("reading audit checkpoints") as connection:
            rows = connection.execute(_all_checkpoints).all()
        return [_checkpoint(row) for row in rows]

    def purges(self) -> list[PurgeCommitment]:
        """Every stored purge commitment, oldest first (the newest is the chain's anchor)."""
        with self._transaction("reading audit purge commitments") as connection:
            if not inspect(connection).has_table(audit_purges.name):
                return []  # a database from before revision 0002, never purged
            rows = connection.execute(_all_purges).all()
        return [_purge(row) for row in rows]

    def plan_purge(self, before: datetime) -> PurgePlan | None:
        """What :meth:`purge` would delete for ``before`` (a dry run); ``None`` if nothing."""
        cutoff = utc(before, "plan_purge(before)")
        with self._transaction("planning an audit purge") as connection:
            return _plan(connection, cutoff)

    def purge(self, before: datetime, *, progress: Progress = silent) -> PurgeCommitment | None:
        """Delete the records older than ``before`` (the longest prefix of the chain in ``seq``
        order whose decision times all lie before it) and their subject-index rows, leaving a
        signed :class:`~services.audit.retention.PurgeCommitment` in ``audit_purges`` as the new
        anchor of the chain, a checkpoint of the anchor (also appended to the witness) and an
        audit record of the purge. One transaction; ``None`` if nothing was old enough.

        The purge record is appended before the deletion, so the chain head never disappears
        and sequence numbers are never reused. The deletion goes :data:`PURGE_CHUNK` records
        at a time (still one transaction), telling ``progress`` how many are gone of how many.
        """
        cutoff = utc(before, "purge(before)")
        checkpointer = self._checkpointer
        signer = checkpointer.signer
        if signer is None:
            raise AuditStoreError(
                f"cannot purge the audit log on {self._url}: no signing key to sign the purge "
                "commitment, and without it the remaining chain could not be verified. Fix: "
                "open the store with a Checkpointer that has a signer (schakel keys init)."
            )
        anchor: Checkpoint | None = None
        made: Checkpoint | None = None
        with self._transaction("purging old audit records", write=True) as connection:
            if self._postgresql:
                connection.execute(_LOCK_AUDIT_RECORDS)
            plan = _plan(connection, cutoff)
            if plan is None:
                return None
            up_to = plan.up_to_seq
            anchor_hash = bytes(connection.execute(_hash_at, {"at_seq": up_to}).scalar_one())
            commitment = signed_purge(signer, plan, anchor_hash, checkpointer.clock())
            with self._bulk.cursor(connection) as cursor:
                _, head = self._append(cursor, [audit_row(purge_record(commitment))])
            _delete_prefix(connection, up_to, plan.records, progress)
            connection.execute(
                audit_purges.insert(),
                {name: getattr(commitment, name) for name in _PURGE_NAMES},
            )
            anchor = checkpointer.make(up_to, anchor_hash)
            connection.execute(
                self._insert_checkpoint,
                {name: getattr(anchor, name) for name in _CHECKPOINT_NAMES},
            )
            made = self._checkpoint_if_due(connection, head, force=True)
        checkpointer.committed(anchor)
        checkpointer.committed(made)
        return commitment

    def mark_produced(self, produced: Sequence[tuple[str, int, int]]) -> None:
        if not produced:
            self._check_open()
            return
        params = [
            {"p_id": exchange_id, "p_partition": partition, "p_offset": offset}
            for exchange_id, partition, offset in produced
        ]
        with self._transaction("marking feed messages produced", write=True) as connection:
            connection.execute(_set_produced, params)

    def mark_consumed(self, recipient: str, partition: int, upto_offset: int) -> int:
        statement = (
            update(feed_outbox)
            .where(
                feed_outbox.c.recipient == recipient,
                feed_outbox.c.consumed == false(),
                feed_outbox.c.kafka_partition == partition,
                feed_outbox.c.kafka_offset < upto_offset,
            )
            .values(consumed=True)
        )
        with self._transaction("marking feed messages consumed", write=True) as connection:
            return connection.execute(statement).rowcount

    def undelivered(self, recipient: str | None = None, limit: int = 10_000) -> list[OutboxEntry]:
        check_limit(limit)
        statement = select(feed_outbox).where(feed_outbox.c.consumed == false())
        if recipient is not None:
            statement = statement.where(feed_outbox.c.recipient == recipient)
        statement = statement.order_by(feed_outbox.c.seq).limit(limit)
        with self._transaction("reading undelivered feed messages") as connection:
            return [outbox_entry(row) for row in connection.execute(statement).mappings()]

    def stored_records(self, record_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(record_ids))
        found: dict[str, dict[str, Any]] = {}
        with self._transaction("reading stored audit records") as connection:
            for start in range(0, len(wanted), _IN_CHUNK):
                statement = select(audit_records.c.record_id, audit_records.c.body).where(
                    audit_records.c.record_id.in_(wanted[start : start + _IN_CHUNK])
                )
                found.update((i, _loads(body)) for i, body in connection.execute(statement))
        return found

    def unproduced(self, exchange_ids: Collection[str]) -> dict[str, OutboxEntry]:
        wanted = sorted(set(exchange_ids))
        waiting: dict[str, OutboxEntry] = {}
        with self._transaction("reading unproduced feed messages") as connection:
            for start in range(0, len(wanted), _IN_CHUNK):
                statement = select(feed_outbox).where(
                    feed_outbox.c.exchange_id.in_(wanted[start : start + _IN_CHUNK]),
                    feed_outbox.c.consumed == false(),
                    or_(
                        feed_outbox.c.kafka_partition.is_(None),
                        feed_outbox.c.kafka_offset.is_(None),
                    ),
                )
                for row in connection.execute(statement).mappings():
                    entry = outbox_entry(row)
                    waiting[entry.exchange_id] = entry
        return waiting

    def unconsumed_outside(
        self, recipient: str, ends: Mapping[int, int], limit: int = 10_000
    ) -> list[OutboxEntry]:
        check_limit(limit)
        partition, offset = feed_outbox.c.kafka_partition, feed_outbox.c.kafka_offset
        held = [and_(partition == p, offset < end) for p, end in sorted(ends.items())]
        statement = (
            select(feed_outbox)
            .where(
                feed_outbox.c.recipient == recipient,
                feed_outbox.c.consumed == false(),
                or_(partition.is_(None), offset.is_(None), ~or_(*held)) if held else true(),
            )
            .order_by(feed_outbox.c.seq)
            .limit(limit)
        )
        with self._transaction("reading feed messages the broker lost") as connection:
            return [outbox_entry(row) for row in connection.execute(statement).mappings()]

    def purge_consumed(self, before: datetime) -> int:
        statement = feed_outbox.delete().where(
            feed_outbox.c.consumed == true(),
            feed_outbox.c.created_at < utc(before, "purge_consumed(before)"),
        )
        with self._transaction("purging consumed feed messages", write=True) as connection:
            return connection.execute(statement).rowcount

    def count(self, **filters: str) -> int:
        check_filters(filters)
        statement = select(func.count()).select_from(audit_records)
        for name, value in sorted(filters.items()):
            statement = statement.where(audit_records.c[name] == value)
        with self._transaction("counting audit records") as connection:
            return int(connection.execute(statement).scalar_one())

    def get(self, record_id: str) -> dict[str, Any] | None:
        statement = select(audit_records.c.body).where(audit_records.c.record_id == record_id)
        with self._transaction("reading an audit record") as connection:
            body = connection.execute(statement).scalar_one_or_none()
        return None if body is None else _loads(body)

    def records(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        check_limit(limit)
        params = {"after_seq": after_seq, "page_limit": limit}
        with self._transaction("reading audit records") as connection:
            rows = connection.execute(_record_page, params).all()
        return [(seq, _loads(body)) for seq, body in rows]

    def records_for_subject(
        self, pseudonym: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        check_limit(limit)
        params = {"pseudonym": pseudonym, "after_seq": after_seq, "page_limit": limit}
        with self._transaction("reading the audit records of a subject") as connection:
            rows = connection.execute(_subject_page, params).all()
        return [(seq, _loads(body)) for seq, body in rows]

    def close(self) -> None:
        """Close the pooled connections (SQLite checkpoints its WAL when the last one closes)."""
        if not self._closed:
            self._closed = True
            with self._write_lock:
                self._engine.dispose()

    def _append(self, cursor: Any, rows: Sequence[AuditRow]) -> tuple[int, tuple[int, bytes]]:
        """Insert the new ones of ``rows`` chained onto the head, through a driver ``cursor``
        of a write transaction that holds the lock; return how many were new and the new
        head ``(seq, chain_hash)``. Records stored before (a replay) are left out before
        anything is numbered, so replays never change the chain."""
        bulk = self._bulk
        start = bulk.head(cursor) or (0, GENESIS)
        known = bulk.known(cursor, [row.columns[0] for row in rows])
        if known:
            rows = [row for row in rows if row.columns[0] not in known]
            if not rows:
                return 0, start
        hashes, end = chained(rows, start)
        first = start[0] + 1
        bulk.insert_records(cursor, record_rows(rows, first, hashes, bulk))
        subjects = subject_rows(rows, first)
        if subjects:
            bulk.insert_subjects(cursor, subjects)
        return len(rows), end

    def _checkpoint_if_due(
        self, connection: Connection, head: tuple[int, bytes], *, force: bool = False
    ) -> Checkpoint | None:
        checkpointer = self._checkpointer
        if not checkpointer.enabled:
            return None
        if not checkpointer.loaded:
            last = connection.execute(_last_checkpoint).one_or_none()
            checkpointer.load(None if last is None else _checkpoint(last))
        if not checkpointer.due(head[0], force=force):
            return None
        made = checkpointer.make(*head)
        connection.execute(
            self._insert_checkpoint,
            {
                "seq": made.seq,
                "chain_hash": made.chain_hash,
                "created_at": made.created_at,
                "key_id": made.key_id,
                "signature": made.signature,
            },
        )
        return made

    @contextmanager
    def _transaction(self, operation: str, *, write: bool = False) -> Iterator[Connection]:
        self._check_open()
        lock = self._write_lock if write else self._read_lock
        with lock, translated(operation, self._url), self._engine.connect() as connection:
            if write:
                connection.execution_options(**{WRITE_TRANSACTION: True})
            with connection.begin():
                yield connection

    def _check_open(self) -> None:
        if self._closed:
            raise AuditStoreError(
                f"the audit store on {self._url} is closed. Fix: open a new SqlAuditStore."
            )


def _insert_new(dialect: str, unique: Column[Any]) -> Insert:
    """``INSERT ... ON CONFLICT (unique) DO NOTHING`` into the table of ``unique``."""
    table = unique.table
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[unique])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=[unique])


def _checkpoint(row: Row[Any]) -> Checkpoint:
    seq, chain_hash, created_at, key_id, signature = row
    return Checkpoint(seq, bytes(chain_hash), whole_seconds(created_at), key_id, bytes(signature))


def _plan(connection: Connection, cutoff: datetime) -> PurgePlan | None:
    """The purge plan for ``cutoff`` read on ``connection``: every record up to the first one
    decided at or after ``cutoff`` (all records if none is)."""
    young = connection.execute(_first_young, {"before": cutoff}).scalar_one_or_none()
    up_to = (2**62) if young is None else young - 1
    count, last_seq, first, last = connection.execute(_prefix, {"up_to": up_to}).one()
    if not count:
        return None
    return PurgePlan(int(last_seq), int(count), utc_moment(first), utc_moment(last))


def utc_moment(value: datetime) -> datetime:
    """A timestamp read from the database in UTC (SQLite hands back naive UTC datetimes)."""
    return whole_seconds(value)


def _delete_prefix(connection: Connection, up_to: int, total: int, progress: Progress) -> None:
    """Delete the records with ``seq <= up_to`` and their subject-index rows, a chunk at a
    time, so ``progress`` can be told how far the deletion is."""
    low = connection.execute(select(func.min(audit_records.c.seq))).scalar_one()
    deleted = 0
    progress(deleted, total)
    while low is not None and low <= up_to:
        high = min(low + PURGE_CHUNK - 1, up_to)
        connection.execute(audit_subjects.delete().where(audit_subjects.c.seq <= high))
        gone = connection.execute(audit_records.delete().where(audit_records.c.seq <= high))
        deleted += gone.rowcount
        progress(deleted, total)
        low = high + 1


def _purge(row: Row[Any]) -> PurgeCommitment:
    seq, chain_hash, records, first, last, created_at, key_id, signature = row
    return PurgeCommitment(
        seq,
        bytes(chain_hash),
        int(records),
        whole_seconds(first),
        whole_seconds(last),
        whole_seconds(created_at),
        key_id,
        bytes(signature),
    )


def _loads(body: str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(body)
    return record
