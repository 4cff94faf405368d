"""The tamper-evident audit log: hash chain, signed checkpoints, witness and verification,
with tampering done the way an attacker with database access would (raw SQL, on a SQLite file
and on a real PostgreSQL server)."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from services.audit import AuditStoreError
from services.audit.chain import GENESIS, ChainRecord, chained, link
from services.audit.checkpoint import (
    Checkpoint,
    CheckpointPolicy,
    KeyStoreSigner,
    parse_time,
    signed,
    statement,
)
from services.audit.checkpointer import Checkpointer
from services.audit.reading import chain_records
from services.audit.rows import AUDIT_COLUMNS, audit_row
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditDatabase, MemoryAuditStore, MemoryWitness
from services.audit.verify import Verification, verify
from services.audit.witness import FileWitness
from services.keys.testing import MemoryKeyStore
from tests.audit.test_store import decision_record

KEYS = MemoryKeyStore.for_tests()
SIGNER = KEYS.signing_key()
PUBLIC = {SIGNER.key_id: SIGNER.public_key_bytes()}
OTHER = MemoryKeyStore.for_tests(b"someone-else").signing_key()


class Clock:
    """A settable clock for the checkpoint schedule."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def records(start: int, stop: int) -> list[dict[str, object]]:
    return [decision_record(n) for n in range(start, stop)]


def checkpointer(
    witness: MemoryWitness | FileWitness | None = None, every: int = 10, clock: Clock | None = None
) -> Checkpointer:
    return Checkpointer(
        SIGNER, witness, CheckpointPolicy(every_records=every, every_seconds=60), clock or Clock()
    )


SQL_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
STORE_KINDS = ["memory", *SQL_KINDS]


def new_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of ``kind`` (``sqlite`` or ``postgres``)."""
    if kind == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path}/audit.db"


def new_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, cp: Checkpointer | None = None
) -> SqlAuditStore | MemoryAuditStore:
    if kind == "memory":
        return MemoryAuditStore(checkpointer=cp)
    return SqlAuditStore.open(new_url(kind, request, tmp_path), cp)


def check(store: SqlAuditStore | MemoryAuditStore, *extra: Checkpoint) -> Verification:
    return verify(chain_records(store, page=7), [*store.checkpoints(), *extra], PUBLIC)


@pytest.fixture(params=SQL_KINDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, MemoryWitness]:
    """The URL of a database (SQLite file, or PostgreSQL) with 30 records in three batches,
    checkpoints every 10, and a witness."""
    url = new_url(request.param, request, tmp_path)
    witness = MemoryWitness()
    store = SqlAuditStore.open(url, checkpointer(witness))
    for start in (0, 10, 20):
        store.record(records(start, start + 10), [])
    store.close()
    return url, witness


def tamper(url: str, *statements: str, params: list[dict[str, Any]] | None = None) -> None:
    """Run ``statements`` in one transaction on a plain engine, as someone with database access
    would. On PostgreSQL foreign-key triggers are off first (``session_replication_role``, a
    superuser's setting), as on a SQLite connection of one's own."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            for sql in statements:
                if params is None:
                    connection.execute(text(sql))
                else:
                    connection.execute(text(sql), params)
    finally:
        engine.dispose()


def query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def reopen(url: str) -> SqlAuditStore:
    return SqlAuditStore.open(url)


def found(url: str, witness: MemoryWitness | None = None) -> Verification:
    store = reopen(url)
    try:
        return check(store, *(witness.checkpoints() if witness else []))
    finally:
        store.close()


def record_id(url: str, seq: int) -> str:
    return str(query(url, "SELECT record_id FROM audit_records WHERE seq = :seq", seq=seq)[0][0])


# -- the chain -----------------------------------------------------------------------------------


def test_the_encoding_is_the_documented_one():
    body = '{"a":1}'
    expected = hashlib.sha256(
        GENESIS
        + (1).to_bytes(8, "big")
        + (0).to_bytes(8, "big")
        + (3).to_bytes(4, "big")
        + b"r-1"
        + body.encode()
    )
    assert link(GENESIS, 1, 0, "r-1", body) == expected.digest()
    assert hashlib.sha256(b"schakel-audit-chain/v1 genesis").digest() == GENESIS


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_replays_never_change_the_chain(kind: str, request: pytest.FixtureRequest, tmp_path: Path):
    store = new_store(kind, request, tmp_path)
    store.record(records(0, 10), [])
    before = store.chain()
    assert store.record(records(0, 10), []) == 0
    assert store.record(records(5, 10), []) == 0
    assert store.chain() == before
    assert store.record([*records(8, 12), decision_record(3), decision_record(12)], []) == 3
    after = store.chain()
    assert after[:10] == before
    assert [r.seq for r in after] == list(range(1, 14))
    assert [r.prev_seq for r in after] == list(range(13))
    assert check(store).ok
    store.close()


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_memory_and_sql_build_the_same_chain(kind: str, request: pytest.FixtureRequest, tmp_path):
    stores = [MemoryAuditStore(), new_store(kind, request, tmp_path)]
    for store in stores:
        store.record(records(0, 5), [])
        store.record([*records(3, 9), decision_record(1)], [])
    memory, sql = (store.chain() for store in stores)
    assert memory == sql
    assert [r for _, r in stores[1].records()] == records(0, 9)  # records() is unchanged
    for store in stores:
        store.close()


def test_verify_reports_an_intact_log(db: tuple[str, MemoryWitness]):
    url, witness = db
    result = found(url, witness)
    assert result.ok, result.message
    assert (result.records, result.last_seq, result.newest_checkpoint) == (30, 30, 30)
    assert result.message.startswith("audit log intact: 30 records up to seq 30")


def test_an_empty_log_is_intact():
    result = verify([], [], {})
    assert result.ok
    assert result.records == 0


# -- tampering in the database, caught and located -----------------------------------------------


def test_a_modified_record_is_caught_at_its_seq(db: tuple[str, MemoryWitness]):
    url, _ = db
    tamper(
        url,
        "UPDATE audit_records SET body = replace(body, 'delivered', 'withheld') WHERE seq = 13",
    )
    result = found(url)
    first = result.first
    assert first is not None
    assert (first.kind, first.seq, first.record_id) == ("modified", 13, record_id(url, 13))
    assert "hash mismatch at seq 13" in result.message
    assert result.total_findings == 1


def test_a_deleted_record_is_caught_where_it_was(db: tuple[str, MemoryWitness]):
    url, _ = db
    following = record_id(url, 8)
    tamper(url, "DELETE FROM audit_records WHERE seq = 7")
    first = found(url).first
    assert first is not None
    assert (first.kind, first.seq, first.record_id) == ("deleted", 7, following)
    assert "seq 8" in first.message and "follows seq 7" in first.message


def test_a_deleted_checkpointed_record_is_caught(db: tuple[str, MemoryWitness]):
    url, _ = db
    tamper(url, "DELETE FROM audit_records WHERE seq IN (10, 11)")
    result = found(url)
    assert [(f.kind, f.seq) for f in result.findings][:1] == [("deleted", 10)]


def test_an_inserted_record_is_caught(db: tuple[str, MemoryWitness]):
    """Make room at seq 6 by renumbering, then insert a forged record there."""
    url, _ = db
    tamper(
        url,
        "UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 6",
        "UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000",
        "INSERT INTO audit_records (seq, record_id, timestamp, action, result, body, prev_seq, "
        "chain_hash) SELECT 6, 'forged', timestamp, action, result, body, 5, chain_hash "
        "FROM audit_records WHERE seq = 5",
    )
    first = found(url).first
    assert first is not None
    assert (first.kind, first.seq, first.record_id) == ("inserted", 6, "forged")


def test_an_inserted_record_with_a_correct_link_is_caught(db: tuple[str, MemoryWitness]):
    """A forger who knows the chain encoding links the new record properly onto seq 5."""
    url, _ = db
    ((head,),) = query(url, "SELECT chain_hash FROM audit_records WHERE seq = 5")
    forged = link(bytes(head), 6, 5, "forged", "{}")
    tamper(
        url,
        "UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 6",
        "UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000",
    )
    tamper(
        url,
        "INSERT INTO audit_records (seq, record_id, timestamp, action, result, body, "
        "prev_seq, chain_hash) VALUES (6, 'forged', '2026-11-22 00:00:00+00:00', 'deliver', "
        "'delivered', '{}', 5, :forged)",
        params=[{"forged": forged}],
    )
    first = found(url).first
    assert first is not None
    assert (first.kind, first.seq, first.record_id) == ("inserted", 6, "forged")


def test_reordered_records_are_caught(db: tuple[str, MemoryWitness]):
    url, _ = db
    tamper(
        url,
        "UPDATE audit_records SET seq = -3 WHERE seq = 3",
        "UPDATE audit_records SET seq = 3 WHERE seq = 4",
        "UPDATE audit_records SET seq = 4 WHERE seq = -3",
    )
    first = found(url).first
    assert first is not None
    assert (first.kind, first.seq) == ("reordered", 3)
    assert first.record_id == record_id(url, 3)


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(db: tuple[str, MemoryWitness]):
    """Modify seq 15 and recompute every later hash: the chain is consistent again, but the
    checkpoint at seq 20 signed another head."""
    url, _ = db
    tamper(
        url,
        "UPDATE audit_records SET body = replace(body, 'delivered', 'withheld') WHERE seq = 15",
    )
    rows = query(
        url, "SELECT seq, prev_seq, record_id, body, chain_hash FROM audit_records ORDER BY seq"
    )
    head = bytes(rows[13][4])
    rehashed: list[dict[str, Any]] = []
    for seq, prev, rid, body, _ in rows[14:]:
        head = link(head, seq, prev, rid, body)
        rehashed.append({"hash": head, "seq": seq})
    tamper(url, "UPDATE audit_records SET chain_hash = :hash WHERE seq = :seq", params=rehashed)
    result = found(url)
    first = result.first
    assert first is not None
    assert (first.kind, first.seq) == ("checkpoint-mismatch", 20)
    assert "recomputed" in first.message


def test_a_cut_off_tail_is_caught_only_against_the_witness(db: tuple[str, MemoryWitness]):
    url, witness = db
    tamper(
        url,
        "DELETE FROM audit_records WHERE seq > 24",
        "DELETE FROM audit_checkpoints WHERE seq > 24",
    )
    assert found(url).ok  # what is left is consistent: why the witness exists
    result = found(url, witness)
    first = result.first
    assert first is not None
    assert (first.kind, first.seq) == ("truncated", 30)
    assert f"seq 24 (record {record_id(url, 24)})" in first.message


# -- checkpoints -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_checkpoints_come_every_n_records_and_go_to_the_witness(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    witness = MemoryWitness()
    cp = checkpointer(witness, every=10)
    store = new_store(kind, request, tmp_path, cp)
    store.record(records(0, 3), [])  # the first write gets one at once
    for start in range(3, 40, 4):
        store.record(records(start, start + 4), [])
    seqs = [c.seq for c in store.checkpoints()]
    assert seqs == [3, 15, 27, 39]
    assert [c.seq for c in witness.checkpoints()] == seqs
    chain = {r.seq: r.chain_hash for r in store.chain()}
    assert all(c.chain_hash == chain[c.seq] and c.verify(PUBLIC[c.key_id]) for c in seqs_of(store))
    assert store.checkpoint() is not None  # forced: seq 43 was not yet signed
    assert store.checkpoint() is None  # nothing new since
    assert check(store).newest_checkpoint == 43
    store.close()


def seqs_of(store: SqlAuditStore | MemoryAuditStore) -> list[Checkpoint]:
    return store.checkpoints()


def test_checkpoints_come_after_a_time_too():
    clock = Clock()
    store = MemoryAuditStore(checkpointer=checkpointer(every=1_000, clock=clock))
    store.record(records(0, 2), [])
    clock.now += timedelta(seconds=59)
    store.record(records(2, 4), [])
    clock.now += timedelta(seconds=1)
    store.record(records(4, 5), [])
    assert [c.seq for c in store.checkpoints()] == [2, 5]
    assert store.checkpoints()[1].created_at == clock.now


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_a_reopened_store_continues_the_schedule(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    url = new_url(kind, request, tmp_path)
    first = SqlAuditStore.open(url, checkpointer(every=10))
    first.record(records(0, 5), [])
    first.close()
    second = SqlAuditStore.open(url, checkpointer(every=10))
    second.record(records(5, 9), [])  # 4 after the checkpoint at 5: none yet
    second.record(records(9, 15), [])
    assert [c.seq for c in second.checkpoints()] == [5, 15]
    second.close()


def test_a_witness_that_fails_gets_the_checkpoint_later():
    witness = MemoryWitness()
    store = MemoryAuditStore(checkpointer=checkpointer(witness, every=1))
    witness.fail = True
    with pytest.raises(AuditStoreError, match="witness"):
        store.record(records(0, 1), [])
    assert store.count() == 1  # the records are committed; a replay is harmless
    witness.fail = False
    assert store.record(records(0, 1), []) == 0
    assert [c.seq for c in witness.checkpoints()] == [1]


def test_the_file_witness_appends_json_lines(tmp_path: Path):
    path = tmp_path / "elsewhere" / "witness.jsonl"
    witness = FileWitness(path)
    assert witness.checkpoints() == []
    store = MemoryAuditStore(checkpointer=checkpointer(witness, every=2))
    store.record(records(0, 2), [])
    store.record(records(2, 4), [])
    assert witness.checkpoints() == store.checkpoints()
    assert len(path.read_text().splitlines()) == 2
    path.write_text(path.read_text() + "not json\n")
    with pytest.raises(AuditStoreError, match="line 3 of the witness file"):
        witness.checkpoints()


def test_a_key_store_signer_follows_rotation():
    keys = MemoryKeyStore.for_tests()
    signer = KeyStoreSigner(keys)
    before = signed(signer, 1, GENESIS, datetime(2026, 1, 1, tzinfo=UTC))
    keys.rotate_signing_key()
    after = signed(signer, 2, GENESIS, datetime(2026, 1, 1, tzinfo=UTC))
    assert before.key_id != after.key_id
    assert after.verify(keys.signing_key().public_key_bytes())


def test_the_checkpoint_statement_is_the_documented_one():
    moment = parse_time("2026-11-22T12:00:00Z")
    assert statement(7, bytes(32), moment, "k1") == (
        b"schakel-audit-checkpoint/v1\nseq=7\nchain_hash=" + b"00" * 32
        + b"\ncreated_at=2026-11-22T12:00:00Z\nkey_id=k1\n"
    )  # fmt: skip


def test_a_forged_signature_is_caught(db: tuple[str, MemoryWitness]):
    url, _ = db
    tamper(
        url,
        "UPDATE audit_checkpoints SET signature = :zeros WHERE seq = 20",
        params=[{"zeros": bytes(64)}],
    )
    first = found(url).first
    assert first is not None
    assert (first.kind, first.seq) == ("checkpoint-signature", 20)


def test_checkpoints_re_signed_with_another_key_are_caught(db: tuple[str, MemoryWitness]):
    """Rewrite a record, recompute the chain, and re-sign the checkpoints with another key:
    under the genuine key id the signature fails; under its own id the key is not trusted."""
    url, _ = db
    store = reopen(url)
    genuine = store.checkpoints()
    store.close()
    tamper(
        url,
        "UPDATE audit_checkpoints SET signature = :signature WHERE seq = :seq",
        params=[
            {"signature": OTHER.sign(checkpoint.statement()), "seq": checkpoint.seq}
            for checkpoint in genuine
        ],
    )
    assert {f.kind for f in found(url).findings} == {"checkpoint-signature"}
    resigned = [
        signed(OTHER, checkpoint.seq, checkpoint.chain_hash, checkpoint.created_at)
        for checkpoint in genuine
    ]
    tamper(
        url,
        "UPDATE audit_checkpoints SET key_id = :key_id, signature = :signature WHERE seq = :seq",
        params=[{"key_id": c.key_id, "signature": c.signature, "seq": c.seq} for c in resigned],
    )
    result = found(url)
    assert {f.kind for f in result.findings} == {"unknown-key"}
    assert "schakel keys public-key" in result.message


# -- upgrading a database from before the chain ---------------------------------------------------


_PRE_CHAIN_KEY = {
    "sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgresql": "BIGSERIAL PRIMARY KEY",
}
_PRE_CHAIN_TIME = {"sqlite": "DATETIME", "postgresql": "TIMESTAMPTZ"}


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_a_database_from_before_the_chain_is_chained_when_opened(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    url = new_url(kind, request, tmp_path)
    engine = create_engine(url)
    with engine.begin() as connection:
        dialect = connection.dialect.name
        connection.execute(
            text(
                f"CREATE TABLE audit_records (seq {_PRE_CHAIN_KEY[dialect]}, record_id "
                f"VARCHAR NOT NULL UNIQUE, timestamp {_PRE_CHAIN_TIME[dialect]} NOT NULL, "
                "action VARCHAR NOT NULL, result VARCHAR NOT NULL, object VARCHAR, "
                "signal_id VARCHAR, origin VARCHAR, recipient VARCHAR, covenant_id VARCHAR, "
                "rule_id VARCHAR, body TEXT NOT NULL)"
            )
        )
        for record in records(0, 5):
            row = audit_row(record)
            values = {
                **dict(zip(AUDIT_COLUMNS, row.columns, strict=True)),
                "timestamp": row.timestamp,
            }
            connection.execute(
                text(
                    "INSERT INTO audit_records (record_id, timestamp, action, result, body) "
                    "VALUES (:record_id, :timestamp, :action, :result, :body)"
                ),
                values,
            )
    engine.dispose()
    store = SqlAuditStore.open(url)
    store.record(records(5, 8), [])
    result = check(store)
    assert result.ok, result.message
    assert result.records == 8
    assert [r.prev_seq for r in store.chain()] == list(range(8))
    store.close()


# -- cost ------------------------------------------------------------------------------------------


def test_verifying_100k_records_takes_seconds_at_most():
    rows = [audit_row(decision_record(n % 1000)) for n in range(1000)]
    chain: list[ChainRecord] = []
    head = (0, GENESIS)
    for block in range(100):
        renamed = [
            row._replace(columns=(f"r-{block}-{row.column('signal_id')}", *row.columns[1:]))
            for row in rows
        ]
        first = head[0] + 1
        hashes, head = chained(renamed, head)
        chain.extend(
            ChainRecord(seq, seq - 1, row.record_id, row.body, chain_hash)
            for seq, (row, chain_hash) in enumerate(zip(renamed, hashes, strict=True), first)
        )
    final = signed(SIGNER, head[0], head[1], datetime(2026, 11, 22, tzinfo=UTC))
    started = time.perf_counter()
    result = verify(chain, [final], PUBLIC)
    elapsed = time.perf_counter() - started
    assert result.ok, result.message
    assert result.records == 100_000
    assert elapsed < 5, f"verifying 100,000 records took {elapsed:.1f} s"


def test_memory_database_can_be_shared_by_stores_with_checkpoints():
    database = MemoryAuditDatabase()
    first = MemoryAuditStore(database, checkpointer(every=3))
    first.record(records(0, 3), [])
    second = MemoryAuditStore(database, checkpointer(every=3))
    second.record(records(3, 5), [])
    assert [c.seq for c in second.checkpoints()] == [3]
    assert check(second).ok
