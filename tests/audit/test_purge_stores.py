"""Retention purges through the store interface alone: the memory double purges exactly like
the SQL store (SQLite file and real PostgreSQL). Tampering after a purge is in
test_retention.py, which needs raw SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.audit import AuditStoreError
from services.audit.reading import chain_records
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore, MemoryWitness
from services.audit.verify import Verification, verify
from tests.audit.test_chain import (
    PUBLIC,
    STORE_KINDS,
    Clock,
    checkpointer,
    new_store,
    records,
)
from tests.audit.test_store import T0, decision_record

CUTOFF = T0 + timedelta(seconds=20)
"""Records 0..19 are decided before it (decision_record(n) is decided at T0 + n s)."""

Store = SqlAuditStore | MemoryAuditStore


def verified(store: Store, witness: MemoryWitness | None = None) -> Verification:
    extra = witness.checkpoints() if witness is not None else []
    return verify(
        chain_records(store, page=7), [*store.checkpoints(), *extra], PUBLIC, store.purges()
    )


@pytest.fixture(params=STORE_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def opened(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of ``kind`` with checkpoints every 10 records and 30 records in three batches."""
    store = new_store(kind, request, tmp_path, checkpointer(MemoryWitness()))
    for start in (0, 10, 20):
        store.record(records(start, start + 10), [])
    yield store
    store.close()


def test_a_purge_leaves_a_verifiable_chain_behind_a_signed_anchor(opened: Store):
    (at_20,) = opened.chain(after_seq=19, limit=1)
    commitment = opened.purge(CUTOFF)
    assert commitment is not None
    assert (commitment.seq, commitment.records) == (20, 20)
    assert commitment.first_timestamp == T0
    assert commitment.last_timestamp == T0 + timedelta(seconds=19)
    assert commitment.chain_hash == at_20.chain_hash
    assert [record.seq for record in opened.chain()] == list(range(21, 32))
    assert opened.purges() == [commitment]
    result = verified(opened)
    assert result.ok, result.message
    assert result.anchor_seq == 20
    assert result.unsigned_tail == 0  # the purge record is under a checkpoint at once
    anchors = [c for c in opened.checkpoints() if c.seq == 20]
    assert len(anchors) == 1 and anchors[0].chain_hash == commitment.chain_hash


def test_purged_records_are_gone_from_every_read(opened: Store):
    opened.purge(CUTOFF)
    assert opened.count() == 11  # records 20..29 and the purge record
    assert opened.count(action="purge") == 1
    assert opened.get(decision_record(5)["record_id"]) is None
    assert opened.get(decision_record(25)["record_id"]) is not None
    assert opened.records_for_subject("S-ean-5") == []
    assert [seq for seq, _ in opened.records_for_subject("S-ean-25")] == [26]
    assert [seq for seq, _ in opened.records(limit=3)] == [21, 22, 23]


def test_the_purge_is_logged_without_identifiers(opened: Store):
    commitment = opened.purge(CUTOFF)
    assert commitment is not None
    ((seq, logged),) = opened.records(after_seq=30)
    assert seq == 31
    assert (logged["action"], logged["result"]) == ("purge", "purged")
    assert logged["purged"]["up_to_seq"] == 20
    assert logged["purged"]["anchor_hash"] == commitment.chain_hash.hex()
    for name in ("signal_id", "origin", "recipient", "subjects", "covenant", "object"):
        assert logged.get(name) is None


def test_a_dry_run_deletes_nothing_and_nothing_old_means_no_purge(opened: Store):
    plan = opened.plan_purge(CUTOFF)
    assert plan is not None
    assert (plan.up_to_seq, plan.records) == (20, 20)
    assert opened.count() == 30
    assert opened.purges() == []
    assert opened.plan_purge(T0) is None
    assert opened.purge(T0) is None
    assert opened.count() == 30


def test_only_a_prefix_is_purged_and_purges_repeat(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    store = new_store(kind, request, tmp_path, checkpointer(every=1000))
    try:
        store.record(records(0, 5), [])
        store.record(records(100, 101), [])  # decided at T0 + 100 s: stops the first purge
        store.record(records(5, 10), [])
        first = store.purge(T0 + timedelta(seconds=50))
        assert first is not None and (first.seq, first.records) == (5, 5)
        assert verified(store).ok
        second = store.purge(T0 + timedelta(days=1))
        assert second is not None and second.seq == 12  # up to and with the first purge record
        result = verified(store)
        assert result.ok, result.message
        assert result.anchor_seq == 12
        assert [c.seq for c in store.purges()] == [5, 12]
        assert [record.seq for record in store.chain()] == [13]
    finally:
        store.close()


def test_purging_needs_a_signer(kind: str, request: pytest.FixtureRequest, tmp_path: Path):
    store = new_store(kind, request, tmp_path)
    try:
        store.record(records(0, 3), [])
        with pytest.raises(AuditStoreError, match="no signing key"):
            store.purge(CUTOFF)
        assert store.count() == 3
    finally:
        store.close()


def test_naive_cutoffs_are_refused(opened: Store):
    with pytest.raises(AuditStoreError, match="no time zone"):
        opened.purge(CUTOFF.replace(tzinfo=None))
    with pytest.raises(AuditStoreError, match="no time zone"):
        opened.plan_purge(CUTOFF.replace(tzinfo=None))


@pytest.mark.parametrize("sql_kind", [k for k in STORE_KINDS if k != "memory"])
def test_memory_and_sql_stores_purge_alike(
    sql_kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    """The same writes and purges on the double and a SQL store give the same chain, hash
    for hash, the same checkpoints and the same commitments (one fixed clock for both)."""
    clock = Clock()
    stores = [
        new_store("memory", request, tmp_path, checkpointer(every=7, clock=clock)),
        new_store(sql_kind, request, tmp_path, checkpointer(every=7, clock=clock)),
    ]
    try:
        for store in stores:
            store.record(records(0, 12), [])
            store.record(records(30, 31), [])
            store.record(records(12, 25), [])
            store.purge(T0 + timedelta(seconds=10))
            store.record(records(25, 28), [])
            store.purge(T0 + timedelta(seconds=20))  # stops at the young record 30
        memory, sql = stores
        assert memory.chain() == sql.chain()
        assert memory.checkpoints() == sql.checkpoints()
        assert memory.purges() == sql.purges()
        assert [c.seq for c in memory.purges()] == [10, 12]
        assert memory.records_for_subject("S-ean-27") == sql.records_for_subject("S-ean-27")
        assert verified(memory).ok and verified(sql).ok
    finally:
        for store in stores:
            store.close()
