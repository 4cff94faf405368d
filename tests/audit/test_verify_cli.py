"""``schakel audit verify`` and ``schakel audit export``: exit codes, first bad position,
bundles that verify with nothing else."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.audit.checkpoint import CheckpointPolicy, KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.witness import FileWitness
from services.cli.audit import EXIT_ERROR, EXIT_FINDING
from services.cli.audit import app as audit_app
from services.keys import signing_key_path
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile
from services.keys.testing import MemoryKeyStore
from tests.audit.test_store import decision_record

runner = CliRunner()


def cli() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(audit_app, name="audit")
    return app


class Hub:
    """A SQLite audit database written with checkpoints, its key store and witness file."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = tmp_path / "audit.db"
        self.url = f"sqlite:///{self.db}"
        self.keys = tmp_path / "keys.json"
        self.witness = tmp_path / "witness.jsonl"
        keys = FileKeyStore.create(self.keys)
        signing = SigningKeyFile.open(signing_key_path(self.keys))
        checkpointer = Checkpointer(
            KeyStoreSigner(signing), FileWitness(self.witness), CheckpointPolicy(every_records=10)
        )
        store = SqlAuditStore.open(self.url, checkpointer)
        for start in range(0, 30, 10):
            store.record([decision_record(n) for n in range(start, start + 10)], [])
        store.close()
        (tmp_path / "hub.pem").write_text(keys.current_signing_key().public_key_pem())
        self.pem = tmp_path / "hub.pem"

    def run(self, *args: str) -> tuple[int, str]:
        result = runner.invoke(cli(), ["audit", *args, "--keys", str(self.keys)])
        return result.exit_code, result.output

    def tamper(self, sql: str) -> None:
        with sqlite3.connect(self.db) as connection:
            connection.execute(sql)


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return Hub(tmp_path)


def test_an_intact_database_verifies(hub: Hub):
    code, output = hub.run("verify", "--database", hub.url, "--witness", str(hub.witness))
    assert code == 0, output
    assert "audit log intact: 30 records" in output
    assert "newest at seq 30" in output


def test_a_modified_record_exits_1_and_names_the_seq(hub: Hub):
    hub.tamper(
        "UPDATE audit_records SET body = replace(body, 'delivered', 'withheld') WHERE seq = 12"
    )
    code, output = hub.run("verify", "--database", hub.url)
    assert code == EXIT_FINDING
    assert "hash mismatch at seq 12 (record " in output
    assert "delivered" not in output  # never record contents


def test_json_output_names_the_first_finding(hub: Hub):
    hub.tamper("DELETE FROM audit_records WHERE seq = 5")
    code, output = hub.run("verify", "--database", hub.url, "--json")
    assert code == EXIT_FINDING
    result = json.loads(output)
    assert result["ok"] is False
    assert (result["findings"][0]["kind"], result["findings"][0]["seq"]) == ("deleted", 5)


def test_a_cut_off_tail_is_caught_with_the_witness(hub: Hub):
    hub.tamper("DELETE FROM audit_records WHERE seq > 25")
    hub.tamper("DELETE FROM audit_subjects WHERE seq > 25")
    hub.tamper("DELETE FROM audit_checkpoints WHERE seq > 25")
    assert hub.run("verify", "--database", hub.url)[0] == 0
    code, output = hub.run("verify", "--database", hub.url, "--witness", str(hub.witness))
    assert code == EXIT_FINDING
    assert "cut off" in output and "seq 30" in output


def test_export_then_verify_the_bundle_alone(hub: Hub, tmp_path: Path):
    bundle = tmp_path / "out" / "bundle.jsonl"
    bundle.parent.mkdir()
    code, output = hub.run("export", "--out", str(bundle), "--database", hub.url)
    assert code == 0, output
    assert "Wrote 30 records and 3 checkpoints" in output
    hub.db.unlink()  # the auditor has no database and no key store
    result = runner.invoke(cli(), ["audit", "verify", "--bundle", str(bundle)])
    assert result.exit_code == 0, result.output
    pinned = runner.invoke(
        cli(), ["audit", "verify", "--bundle", str(bundle), "--public-key", str(hub.pem)]
    )
    assert pinned.exit_code == 0, pinned.output


def exported(hub: Hub, tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle.jsonl"
    assert hub.run("export", "--out", str(bundle), "--database", hub.url)[0] == 0
    return bundle


def test_a_tampered_bundle_fails(hub: Hub, tmp_path: Path):
    bundle = exported(hub, tmp_path)
    lines = bundle.read_text().splitlines()
    victim = next(i for i, line in enumerate(lines) if '"seq":17}' in line and '"record"' in line)
    lines[victim] = lines[victim].replace("delivered", "withheld")
    bundle.write_text("\n".join(lines) + "\n")
    result = runner.invoke(cli(), ["audit", "verify", "--bundle", str(bundle)])
    assert result.exit_code == EXIT_FINDING
    assert "hash mismatch at seq 17" in result.output


def test_a_bundle_signed_by_a_replaced_key_fails_against_the_pinned_key(hub: Hub, tmp_path: Path):
    """The hub's key in the bundle was swapped for another one and everything re-signed:
    the bundle is consistent in itself, but not with the key the auditor holds."""
    from services.audit.checkpoint import Checkpoint, signed

    other = MemoryKeyStore.for_tests(b"impostor").signing_key()
    bundle = exported(hub, tmp_path)
    lines = [json.loads(line) for line in bundle.read_text().splitlines()]
    lines[0]["public_keys"] = [
        {"key_id": other.key_id, "public_key": other.public_key_bytes().hex(), "fingerprint": ""}
    ]
    for line in lines:
        if "checkpoint" in line:
            genuine = Checkpoint.from_json(line["checkpoint"], "test")
            line["checkpoint"] = signed(
                other, genuine.seq, genuine.chain_hash, genuine.created_at
            ).to_json()
    bundle.write_text("".join(json.dumps(line) + "\n" for line in lines))
    alone = runner.invoke(cli(), ["audit", "verify", "--bundle", str(bundle)])
    assert alone.exit_code == 0  # self-consistent: why auditors pin the key
    pinned = runner.invoke(
        cli(), ["audit", "verify", "--bundle", str(bundle), "--public-key", str(hub.pem)]
    )
    assert pinned.exit_code == EXIT_FINDING
    assert "not among the trusted public keys" in pinned.output


def test_a_bundle_cut_short_cannot_be_verified(hub: Hub, tmp_path: Path):
    bundle = exported(hub, tmp_path)
    lines = bundle.read_text().splitlines()
    bundle.write_text("\n".join(lines[:-3]) + "\n")
    result = runner.invoke(cli(), ["audit", "verify", "--bundle", str(bundle)])
    assert result.exit_code == EXIT_ERROR
    assert "without its trailer" in result.output


def test_no_database_is_an_error_not_a_finding(tmp_path: Path):
    result = runner.invoke(
        cli(), ["audit", "verify", "--database", f"sqlite:///{tmp_path / 'none.db'}"]
    )
    assert result.exit_code == EXIT_ERROR
    assert "no audit database at" in result.output
    assert not (tmp_path / "none.db").exists()  # verifying never creates one


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path):
    other = tmp_path / "x.jsonl"
    other.write_text('{"format": "something-else"}\n')
    result = runner.invoke(cli(), ["audit", "verify", "--bundle", str(other)])
    assert result.exit_code == EXIT_ERROR
    assert "not a Schakel audit bundle" in result.output
