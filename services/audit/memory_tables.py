"""The tables of the in-memory audit store (:mod:`services.audit.testing`) and the table
operations its writes and purges are made of, kept apart from the store itself."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from services.audit.chain import GENESIS, ChainRecord, chained
from services.audit.checkpoint import Checkpoint, whole_seconds
from services.audit.model import OutboxEntry
from services.audit.retention import PurgeCommitment, PurgePlan
from services.audit.rows import AuditRow


class StoredRecord(NamedTuple):
    """One ``audit_records`` row of the memory database."""

    row: AuditRow
    seq: int
    prev_seq: int
    chain_hash: bytes

    def chain_record(self) -> ChainRecord:
        return ChainRecord(
            self.seq, self.prev_seq, self.row.record_id, self.row.body, self.chain_hash
        )


@dataclass
class MemoryAuditDatabase:
    """The tables of memory stores; share one between stores to reopen or to write in parallel."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    last_seq: int = 0
    seqs: list[int] = field(default_factory=list)
    """Sequence numbers in increasing order, for paging with ``bisect``."""
    records: dict[int, StoredRecord] = field(default_factory=dict)
    """seq -> the stored row."""
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
    purges: list[PurgeCommitment] = field(default_factory=list)
    """The ``audit_purges`` table, oldest first."""


def append_rows(db: MemoryAuditDatabase, rows: Sequence[AuditRow]) -> None:
    """Number, chain and store ``rows`` (none of them stored yet) after the head."""
    first = db.last_seq + 1
    hashes, (db.last_seq, db.head) = chained(rows, (db.last_seq, db.head))
    for seq, (row, chain_hash) in enumerate(zip(rows, hashes, strict=True), first):
        db.seqs.append(seq)
        db.records[seq] = StoredRecord(row, seq, seq - 1, chain_hash)
        db.seq_of[row.record_id] = seq
        for pseudonym in row.subjects:
            db.subjects.setdefault(pseudonym, []).append(seq)


def purge_plan(db: MemoryAuditDatabase, cutoff: datetime) -> PurgePlan | None:
    """Every record up to the first one decided at or after ``cutoff`` (all if none is)."""
    young = next((seq for seq in db.seqs if db.records[seq].row.timestamp >= cutoff), None)
    end = len(db.seqs) if young is None else bisect.bisect_left(db.seqs, young)
    if not end:
        return None
    times = [db.records[seq].row.timestamp for seq in db.seqs[:end]]
    return PurgePlan(db.seqs[end - 1], end, whole_seconds(min(times)), whole_seconds(max(times)))


def delete_up_to(db: MemoryAuditDatabase, up_to: int) -> None:
    """Delete the records with ``seq`` <= ``up_to`` and their subject-index entries."""
    end = bisect.bisect_right(db.seqs, up_to)
    touched: set[str] = set()
    for seq in db.seqs[:end]:
        row = db.records.pop(seq).row
        del db.seq_of[row.record_id]
        touched.update(row.subjects)
    del db.seqs[:end]
    for pseudonym in touched:
        seqs = db.subjects[pseudonym]
        del seqs[: bisect.bisect_right(seqs, up_to)]
        if not seqs:
            del db.subjects[pseudonym]


def keep_checkpoint(db: MemoryAuditDatabase, checkpoint: Checkpoint) -> None:
    """Store ``checkpoint`` in ``seq`` order, unless one at its ``seq`` is stored already."""
    seqs = [kept.seq for kept in db.checkpoints]
    at = bisect.bisect_left(seqs, checkpoint.seq)
    if at == len(seqs) or seqs[at] != checkpoint.seq:
        db.checkpoints.insert(at, checkpoint)
