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


class MemoryAuditStore:
    """:class:`~services.audit.model.AuditStore` in memory; safe to share between threads."""

    def __init__(self, database: MemoryAuditDatabase | None = None) -> None:
        self.database = database if database is not None else MemoryAuditDatabase()
        self._closed = False

    def record(self, audit: Sequence[Mapping[str, Any]], outbox: Sequence[OutboxEntry]) -> int:
        rows = [audit_row(record) for record in audit]
        entries = [outbox_entry(outbox_row(entry)) for entry in outbox]
        db = self._open()
        new = 0
        with db.lock:
            for row in rows:
                record_id = row.values["record_id"]
                if record_id in db.seq_of:
                    continue
                db.last_seq += 1
                seq = db.last_seq
                db.seqs.append(seq)
                db.records[seq] = row.values
                db.seq_of[record_id] = seq
                for pseudonym in row.subjects:
                    db.subjects.setdefault(pseudonym, []).append(seq)
                new += 1
            for entry in entries:
                db.outbox.setdefault(entry.exchange_id, entry)
        return new

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


def _loads(body: str) -> dict[str, Any]:
    record: dict[str, Any] = orjson.loads(body)
    return record
