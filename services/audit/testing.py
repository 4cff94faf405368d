"""An in-memory audit store: the test double of :class:`~services.audit.store.SqlAuditStore`.

It validates and serialises through the same functions as the SQL store
(:mod:`services.audit.rows`), so records come back exactly as the database would return them,
and it keeps the same ordering, idempotency, outbox and retention (purge) rules. Its data
lives in a :class:`~services.audit.memory_tables.MemoryAuditDatabase`; a new store on the same
database is the equivalent of reopening a database file.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from services.audit.chain import ChainRecord, unique_rows
from services.audit.checkpoint import Checkpoint
from services.audit.checkpointer import Checkpointer
from services.audit.errors import AuditStoreError
from services.audit.memory_tables import (
    MemoryAuditDatabase,
    append_rows,
    delete_up_to,
    keep_checkpoint,
    purge_plan,
)
from services.audit.model import OutboxEntry
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
from services.core.progress import Progress, silent

__all__ = ["MemoryAuditDatabase", "MemoryAuditStore", "MemoryWitness"]


class MemoryAuditStore:
    """:class:`~services.audit.model.AuditStore` in memory; safe to share between threads."""

    def __init__(
        self, database: MemoryAuditDatabase | None = None, checkpointer: Checkpointer | None = None
    ) -> None:
        self.database = database if database is not None else MemoryAuditDatabase()
        self._checkpointer = checkpointer or Checkpointer()
        self._closed = False

    def record(self, audit: Sequence[Mapping[str, Any]], outbox: Sequence[OutboxEntry]) -> int:
        return self.record_rows([audit_row(record) for record in audit], outbox)

    def record_rows(self, audit: Sequence[AuditRow], outbox: Sequence[OutboxEntry]) -> int:
        rows = unique_rows(audit)
        entries = [outbox_entry(outbox_row(entry)) for entry in outbox]
        db = self._open()
        made: Checkpoint | None = None
        with db.lock:
            fresh = [row for row in rows if row.record_id not in db.seq_of]
            append_rows(db, fresh)
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
            return [db.records[seq].chain_record() for seq in db.seqs[start : start + limit]]

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        db = self._open()
        with db.lock:
            return list(db.checkpoints)

    def purges(self) -> list[PurgeCommitment]:
        """Every purge commitment, oldest first (the newest is the chain's anchor)."""
        db = self._open()
        with db.lock:
            return list(db.purges)

    def plan_purge(self, before: datetime) -> PurgePlan | None:
        """What :meth:`purge` would delete for ``before`` (a dry run); ``None`` if nothing."""
        cutoff = utc(before, "plan_purge(before)")
        db = self._open()
        with db.lock:
            return purge_plan(db, cutoff)

    def purge(self, before: datetime, *, progress: Progress = silent) -> PurgeCommitment | None:
        """Delete the records older than ``before`` as
        :meth:`SqlAuditStore.purge <services.audit.store.SqlAuditStore.purge>` does: the
        longest old prefix of the chain and its subject-index entries, behind a signed purge
        commitment, a checkpoint of the anchor and an audit record of the purge."""
        cutoff = utc(before, "purge(before)")
        checkpointer = self._checkpointer
        signer = checkpointer.signer
        if signer is None:
            raise AuditStoreError(
                "cannot purge the memory audit log: no signing key to sign the purge "
                "commitment, and without it the remaining chain could not be verified. Fix: "
                "open the store with a Checkpointer that has a signer."
            )
        db = self._open()
        with db.lock:
            plan = purge_plan(db, cutoff)
            if plan is None:
                return None
            up_to = plan.up_to_seq
            anchor_hash = db.records[up_to].chain_hash
            commitment = signed_purge(signer, plan, anchor_hash, checkpointer.clock())
            append_rows(db, [audit_row(purge_record(commitment))])
            delete_up_to(db, up_to)
            progress(plan.records, plan.records)
            db.purges.append(commitment)
            anchor = checkpointer.make(up_to, anchor_hash)
            keep_checkpoint(db, anchor)
            made = self._checkpoint_if_due(db, force=True)
        checkpointer.committed(anchor)
        checkpointer.committed(made)
        return commitment

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
        keep_checkpoint(db, made)
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

    def stored_records(self, record_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        found = {i: self.get(i) for i in set(record_ids)}
        return {i: body for i, body in found.items() if body is not None}

    def unproduced(self, exchange_ids: Collection[str]) -> dict[str, OutboxEntry]:
        db = self._open()
        with db.lock:
            entries = [db.outbox.get(i) for i in set(exchange_ids)]
        return {
            e.exchange_id: e
            for e in entries
            if e is not None and not e.consumed and (e.partition is None or e.offset is None)
        }

    def unconsumed_outside(
        self, recipient: str, ends: Mapping[int, int], limit: int = 10_000
    ) -> list[OutboxEntry]:
        check_limit(limit)
        return [
            entry
            for entry in self.undelivered(recipient, limit=len(self._open().outbox) + 1)
            if entry.partition is None
            or entry.offset is None
            or entry.partition not in ends
            or entry.offset >= ends[entry.partition]
        ][:limit]

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
                for stored in db.records.values()
                if all(stored.row.column(name) == value for name, value in wanted)
            )

    def get(self, record_id: str) -> dict[str, Any] | None:
        db = self._open()
        with db.lock:
            seq = db.seq_of.get(record_id)
            body = None if seq is None else db.records[seq].row.body
        return None if body is None else _loads(body)

    def records(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        check_limit(limit)
        db = self._open()
        with db.lock:
            start = bisect.bisect_right(db.seqs, after_seq)
            page = [(seq, db.records[seq].row.body) for seq in db.seqs[start : start + limit]]
        return [(seq, _loads(body)) for seq, body in page]

    def records_for_subject(
        self, pseudonym: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        check_limit(limit)
        db = self._open()
        with db.lock:
            seqs = db.subjects.get(pseudonym, [])
            start = bisect.bisect_right(seqs, after_seq)
            page = [(seq, db.records[seq].row.body) for seq in seqs[start : start + limit]]
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
