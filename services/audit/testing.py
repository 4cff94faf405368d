"""An in-memory audit store: the test double of :class:`~services.audit.store.SqlAuditStore`.

It validates and serialises through the same functions as the SQL store
(:mod:`services.audit.rows`), so records come back exactly as the database would return them,
and it keeps the same ordering, idempotency and outbox rules. Its data lives in a
:class:`MemoryAuditDatabase`; a new store on the same database is the equivalent of reopening
a database file.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson

from services.audit.chain import GENESIS, ChainRecord, chained, unique_rows
from services.audit.checkpoint import Checkpoint
from services.audit.checkpointer import Checkpointer
from services.audit.errors import AuditStoreError
from services.audit.model import OutboxEntry
from services.audit.rows import (
    audit_row,
    check_filters,
    check_limit,
    outbox_entry,
    outbox_row,
    utc,
)


@dataclass
class MemoryAuditDatabase:
    """The tables of memory stores; share one between stores to reopen or to write in parallel."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    last_seq: int = 0
    seqs: list[int] = field(default_factory=list)
    """Sequence numbers in increasing order, for paging with ``bisect``."""
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    """seq -> column values (as :func:`~services.audit.rows.audit_row` made them)."""
    seq_of: dict[str, int] = field(default_factory=dict)
    """record_id -> seq."""
    subjects: dict[str, list[int]] = field(default_factory=dict)
    """pseudonym -> seqs of the records about that subject, increasing."""
    outbox: dict[str, OutboxEntry] = field(default_factory=dict)
    """exchange_id -> entry, in insertion order."""
    head: bytes = GENESIS
    """``chain_hash`` of the record at ``last_seq``."""
    checkpoints: list[Checkpoint] = field(default_factory=list)
    """The ``audit_checkpoints`` table, oldest first."""


class MemoryAuditStore:
    """:class:`~services.audit.model.AuditStore` in memory; safe to share between threads."""

    def __init__(
        self, database: MemoryAuditDatabase | None = None, checkpointer: Checkpointer | None = None
    ) -> None:
        self.database = database if database is not None else MemoryAuditDatabase()
        self._checkpointer = checkpointer or Checkpointer()
        self._closed = False

    def record(self, audit: Sequence[Mapping[str, Any]], outbox: Sequence[OutboxEntry]) -> int:
        rows = unique_rows(audit_row(record) for record in audit)
        entries = [outbox_entry(outbox_row(entry)) for entry in outbox]
        db = self._open()
        made: Checkpoint | None = None
        with db.lock:
            fresh = [row for row in rows if row.values["record_id"] not in db.seq_of]
            values, (db.last_seq, db.head) = chained(fresh, (db.last_seq, db.head))
            for row, columns in zip(fresh, values, strict=True):
                seq = columns["seq"]
                db.seqs.append(seq)
                db.records[seq] = columns
                db.seq_of[columns["record_id"]] = seq
                for pseudonym in row.subjects:
                    db.subjects.setdefault(pseudonym, []).append(seq)
            if fresh:
                made = self._checkpoint_if_due(db)
            for entry in entries:
                db.outbox.setdefault(entry.exchange_id, entry)
        self._checkpointer.committed(made)
        return len(fresh)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the chain head now if records came after the last checkpoint."""
        db = self._open()
        with db.lock:
            made = self._checkpoint_if_due(db, force=True)
        self._checkpointer.committed(made)
        return made

    def chain(self, *, after_seq: int = 0, limit: int = 10_000) -> list[ChainRecord]:
        """Records above ``after_seq`` as the hash chain sees them, in ``seq`` order."""
        check_limit(limit)
        db = self._open()
        with db.lock:
            start = bisect.bisect_right(db.seqs, after_seq)
            page = [db.records[seq] for seq in db.seqs[start : start + limit]]
        return [
            ChainRecord(c["seq"], c["prev_seq"], c["record_id"], c["body"], c["chain_hash"])
            for c in page
        ]

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        db = self._open()
        with db.lock:
            return list(db.checkpoints)

    def _checkpoint_if_due(
        self, db: MemoryAuditDatabase, *, force: bool = False
    ) -> Checkpoint | None:
        checkpointer = self._checkpointer
        if not checkpointer.enabled:
            return None
        if not checkpointer.loaded:
            checkpointer.load(db.checkpoints[-1] if db.checkpoints else None)
        if not checkpointer.due(db.last_seq, force=force):
            return None
        made = checkpointer.make(db.last_seq, db.head)
        db.checkpoints.append(made)
        return made

    def mark_produced(self, produced: Sequence[tuple[str, int, int]]) -> None:
        db = self._open()
        with db.lock:
            for exchange_id, partition, offset in produced:
                entry = db.outbox.get(exchange_id)
                if entry is not None and not entry.consumed:
                    db.outbox[exchange_id] = replace(entry, partition=partition, offset=offset)

    def mark_consumed(self, recipient: str, partition: int, upto_offset: int) -> int:
        db = self._open()
        changed = 0
        with db.lock:
            for exchange_id, entry in db.outbox.items():
                if (
                    entry.recipient == recipient
                    and not entry.consumed
                    and entry.partition == partition
                    and entry.offset is not None
                    and entry.offset < upto_offset
                ):
                    db.outbox[exchange_id] = replace(entry, consumed=True)
                    changed += 1
        return changed

    def undelivered(self, recipient: str | None = None, limit: int = 10_000) -> list[OutboxEntry]:
        check_limit(limit)
        db = self._open()
        with db.lock:
            waiting = [
                entry
                for entry in db.outbox.values()
                if not entry.consumed and (recipient is None or entry.recipient == recipient)
            ]
        return waiting[:limit]

    def purge_consumed(self, before: datetime) -> int:
        cutoff = utc(before, "purge_consumed(before)")
        db = self._open()
        with db.lock:
            purged = [
                exchange_id
                for exchange_id, entry in db.outbox.items()
                if entry.consumed and entry.created_at < cutoff
            ]
            for exchange_id in purged:
                del db.outbox[exchange_id]
        return len(purged)

    def count(self, **filters: str) -> int:
        check_filters(filters)
        db = self._open()
        with db.lock:
            wanted = filters.items()
            return sum(
                1
                for values in db.records.values()
                if all(values[name] == value for name, value in wanted)
            )

    def get(self, record_id: str) -> dict[str, Any] | None:
        db = self._open()
        with db.lock:
            seq = db.seq_of.get(record_id)
            body = None if seq is None else db.records[seq]["body"]
        return None if body is None else _loads(body)

    def records(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        check_limit(limit)
        db = self._open()
        with db.lock:
            start = bisect.bisect_right(db.seqs, after_seq)
            page = [(seq, db.records[seq]["body"]) for seq in db.seqs[start : start + limit]]
        return [(seq, _loads(body)) for seq, body in page]

    def records_for_subject(
        self, pseudonym: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        check_limit(limit)
        db = self._open()
        with db.lock:
            seqs = db.subjects.get(pseudonym, [])
            start = bisect.bisect_right(seqs, after_seq)
            page = [(seq, db.records[seq]["body"]) for seq in seqs[start : start + limit]]
        return [(seq, _loads(body)) for seq, body in page]

    def close(self) -> None:
        self._closed = True

    def _open(self) -> MemoryAuditDatabase:
        if self._closed:
            raise AuditStoreError(
                "the memory audit store is closed. Fix: open a new MemoryAuditStore on its "
                "database."
            )
        return self.database


class MemoryWitness:
    """:class:`~services.audit.witness.Witness` in memory; ``fail`` makes appends fail, to
    test what happens when the witness is unreachable."""

    def __init__(self) -> None:
        self.kept: list[Checkpoint] = []
        self.fail = False

    def append(self, checkpoint: Checkpoint) -> None:
        if self.fail:
            raise AuditStoreError("the memory witness is set to fail. Fix: set fail = False.")
        self.kept.append(checkpoint)

    def checkpoints(self) -> list[Checkpoint]:
        return list(self.kept)


def _loads(body: str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(body)
    return record
