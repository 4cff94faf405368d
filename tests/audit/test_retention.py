"""Retention purges: an old prefix of the chain is deleted behind a signed anchor, and the rest
still verifies (SQLite file and real PostgreSQL), with tampering done by raw SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from services.audit import AuditStoreError
from services.audit.export import open_bundle, write_bundle
from services.audit.reading import chain_records
from services.audit.retention import (
    PurgeCommitment,
    parse_period,
    retention_period,
)
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryWitness
from services.audit.verify import Verification, verify
from services.cli.audit import verify as verify_command
from services.cli.audit_retention import register
from tests.audit.test_chain import (
    OTHER,
    PUBLIC,
    SQL_KINDS,
    checkpointer,
    new_url,
    query,
    records,
    tamper,
)
from tests.audit.test_store import T0, decision_record

CUTOFF = T0 + timedelta(seconds=20)
"""Records 0..19 are decided before it (decision_record(n) is decided at T0 + n s)."""


def verified(store: SqlAuditStore, *extra: object) -> Verification:
    checkpoints = [*store.checkpoints(), *(c for c in extra if not isinstance(c, PurgeCommitment))]
    return verify(chain_records(store, page=7), checkpoints, PUBLIC, store.purges())


@pytest.fixture(params=SQL_KINDS)
def purged(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, SqlAuditStore, PurgeCommitment, MemoryWitness]]:
    """A store with 30 records (checkpoints every 10) of which the first 20 were purged."""
    url = new_url(request.param, request, tmp_path)
    witness = MemoryWitness()
    store = SqlAuditStore.open(url, checkpointer(witness))
    for start in (0, 10, 20):
        store.record(records(start, start + 10), [])
    commitment = store.purge(CUTOFF)
    assert commitment is not None
    yield url, store, commitment, witness
    store.close()


def test_purge_keeps_the_rest_verifiable(purged):
    url, store, commitment, witness = purged
    assert (commitment.seq, commitment.records) == (20, 20)
    assert commitment.first_timestamp == T0
    assert commitment.last_timestamp == T0 + timedelta(seconds=19)
    assert [record.seq for record in store.chain()] == list(range(21, 32))
    result = verified(store, *witness.checkpoints())
    assert result.ok, result.message
    assert result.anchor_seq == 20
    assert "purge anchor at seq 20" in result.message
    assert result.unsigned_tail == 0  # the purge record is under a checkpoint at once
    # the anchor is in the witness as a signed checkpoint
    assert any(c.seq == 20 and c.chain_hash == commitment.chain_hash for c in witness.checkpoints())
    # subject-index rows of purged records went too
    assert query(url, "SELECT count(*) FROM audit_subjects WHERE seq <= 20")[0][0] == 0
    assert query(url, "SELECT count(*) FROM audit_subjects")[0][0] == 20


def test_the_purge_is_logged_without_identifiers(purged):
    _, store, commitment, _ = purged
    (seq, logged), *_ = store.records(after_seq=30)
    assert seq == 31
    assert logged["action"] == "purge"
    assert logged["purged"]["records"] == 20
    assert logged["purged"]["up_to_seq"] == 20
    assert logged["purged"]["anchor_hash"] == commitment.chain_hash.hex()
    for name in ("signal_id", "origin", "recipient", "subjects", "covenant", "object"):
        assert logged.get(name) is None
    assert store.count(action="purge") == 1


def test_tampering_with_a_remaining_record_is_caught(purged):
    url, store, _, _ = purged
    tamper(
        url,
        "UPDATE audit_records SET body = replace(body, 'politie-nh', 'politie-xx') WHERE seq = 25",
    )
    result = verified(store)
    assert not result.ok
    assert result.first is not None
    assert (result.first.kind, result.first.seq) == ("modified", 25)


def test_deleting_more_than_was_purged_is_caught(purged):
    url, store, _, _ = purged
    tamper(url, "DELETE FROM audit_records WHERE seq <= 22")
    result = verified(store)
    assert result.first is not None
    assert result.first.kind == "deleted"


def test_a_forged_anchor_is_caught(purged):
    url, store, commitment, _ = purged
    # move the anchor up and cut more records: the forged commitment has no valid signature
    fake = bytes(query(url, "SELECT chain_hash FROM audit_records WHERE seq = 24")[0][0])
    tamper(
        url,
        "DELETE FROM audit_records WHERE seq <= 24",
        "UPDATE audit_purges SET seq = 24, chain_hash = :h",
        params=[{"h": fake}],
    )
    result = verified(store)
    assert result.first is not None
    assert result.first.kind == "anchor-signature"
    # signed by a key that is not trusted
    foreign = replace(commitment, key_id=OTHER.key_id, signature=OTHER.sign(commitment.statement()))
    outcome = verify(chain_records(store), [], PUBLIC, [foreign])
    assert outcome.first is not None and outcome.first.kind == "anchor-signature"


def test_without_the_anchor_the_gap_is_caught(purged):
    url, store, _, _ = purged
    tamper(url, "DELETE FROM audit_purges")
    result = verified(store)
    assert result.first is not None
    assert result.first.kind == "deleted"


def test_a_dry_run_deletes_nothing(request: pytest.FixtureRequest, tmp_path: Path):
    url = new_url("sqlite", request, tmp_path)
    store = SqlAuditStore.open(url, checkpointer())
    try:
        store.record(records(0, 30), [])
        plan = store.plan_purge(CUTOFF)
        assert plan is not None
        assert (plan.up_to_seq, plan.records) == (20, 20)
        assert store.count() == 30
        assert store.purges() == []
        assert store.plan_purge(T0) is None
        assert store.purge(T0) is None
    finally:
        store.close()


@pytest.mark.parametrize("kind", SQL_KINDS)
def test_only_a_prefix_is_purged_and_purges_repeat(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
):
    """A young record early in the chain stops the purge there; a second purge anchors
    further on, and the log still verifies from the newest anchor."""
    url = new_url(kind, request, tmp_path)
    store = SqlAuditStore.open(url, checkpointer(every=1000))
    try:
        store.record(records(0, 5), [])
        young = records(100, 101)  # decided at T0 + 100 s
        store.record(young, [])
        store.record(records(5, 10), [])
        first = store.purge(T0 + timedelta(seconds=50))
        assert first is not None and (first.seq, first.records) == (5, 5)
        assert verified(store).ok
        second = store.purge(T0 + timedelta(days=1))
        assert second is not None and second.seq == 12  # everything up to the first purge record
        result = verified(store)
        assert result.ok, result.message
        assert result.anchor_seq == 12
        assert [c.seq for c in store.purges()] == [5, 12]
    finally:
        store.close()


def test_purging_needs_a_signer(request: pytest.FixtureRequest, tmp_path: Path):
    store = SqlAuditStore.open(new_url("sqlite", request, tmp_path))
    try:
        store.record(records(0, 3), [])
        with pytest.raises(AuditStoreError, match="no signing key"):
            store.purge(CUTOFF)
        assert store.count() == 3
    finally:
        store.close()


def test_bundles_carry_the_anchor(purged, tmp_path: Path):
    _, store, _, _ = purged
    path = tmp_path / "bundle.jsonl"
    write_bundle(
        path, chain_records(store), store.checkpoints(), PUBLIC, datetime.now(UTC), store.purges()
    )
    bundle = open_bundle(path)
    assert bundle.purges == store.purges()
    assert verify(bundle.records(), bundle.checkpoints, PUBLIC, bundle.purges).ok
    assert not verify(open_bundle(path).records(), bundle.checkpoints, PUBLIC).ok


def test_periods():
    assert parse_period("P730D") == timedelta(days=730)
    assert parse_period("p2wT12h") == timedelta(weeks=2, hours=12)
    for bad in ("P1Y", "P0D", "730", "P", ""):
        with pytest.raises(AuditStoreError, match="ISO 8601 duration"):
            parse_period(bad)


def test_the_period_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SCHAKEL_AUDIT_RETENTION", raising=False)
    assert retention_period() == timedelta(days=730)
    monkeypatch.setenv("SCHAKEL_AUDIT_RETENTION", "P365D")
    assert retention_period() == timedelta(days=365)
    assert retention_period("PT1H") == timedelta(hours=1)


def test_the_cli_purges_and_verify_accepts_the_anchor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from services.keys.file_store import FileKeyStore

    keys = tmp_path / "keys.json"
    witness = tmp_path / "witness.jsonl"
    url = f"sqlite:///{tmp_path}/audit.db"
    monkeypatch.setenv("SCHAKEL_AUDIT_WITNESS", str(witness))
    runner = CliRunner()
    FileKeyStore.create(keys)
    app = typer.Typer()
    app.command("verify")(verify_command)
    register(app)
    store = SqlAuditStore.open(url)
    old = datetime.now(UTC) - timedelta(days=2)
    store.record([decision_record(n, at=old) for n in range(10)], [])
    store.close()
    common = ["--database", url, "--keys", str(keys), "--json"]

    dry = runner.invoke(app, ["purge", "--older-than", "P1D", "--dry-run", *common])
    assert dry.exit_code == 0, dry.output
    assert orjson.loads(dry.output)["records"] == 10
    done = runner.invoke(app, ["purge", "--older-than", "P1D", *common])
    assert done.exit_code == 0, done.output
    assert orjson.loads(done.output)["up_to_seq"] == 10
    assert witness.exists()
    ok = runner.invoke(app, ["verify", "--database", url, "--keys", str(keys)])
    assert ok.exit_code == 0, ok.output
    assert "purge anchor at seq 10" in ok.output
    assert FileKeyStore.open(keys).current_signing_key().key_id in done.output
    bad = runner.invoke(app, ["purge", "--older-than", "P1M", *common])
    assert bad.exit_code == 2
    assert "ISO 8601 duration" in bad.output
