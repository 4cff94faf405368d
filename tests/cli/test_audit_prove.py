"""``schakel audit prove``: one signal proven to a third party from its audit record (export
bundle or database) and the partner's public key; a changed record or another key proves
nothing, and a changed proof breaks the hash chain."""

from __future__ import annotations

import base64
import re
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from services.audit.checkpoint import CheckpointPolicy, KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.witness import FileWitness
from services.cli.main import app
from services.config import ROOT
from services.core import signing
from services.core.batch_signing import sign_batch
from services.core.pipeline import process
from services.core.records import audit_record
from services.core.signing import public_key_base64
from services.keys import signing_key_path
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile
from tests.core.builders import REGISTRY, anomaly, policy
from tests.core.test_signing import LIANDER_OLD, NOW, PWN, keys_yaml, signed_covenant

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


class Audited:
    """A SQLite audit log holding the decisions of a signed batch and of a single signature."""

    def __init__(self, tmp: Path, key_id: str = "liander-1") -> None:
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'audit.db'}"
        self.keys = tmp / "keys.json"
        FileKeyStore.create(self.keys)
        signing_file = SigningKeyFile.open(signing_key_path(self.keys))
        checkpointer = Checkpointer(
            KeyStoreSigner(signing_file), FileWitness(tmp / "witness.jsonl"), CheckpointPolicy()
        )
        p = policy(signed_covenant(liander=keys_yaml((key_id, LIANDER_OLD, None, None))))
        self.batch = sign_batch(
            [anomaly(signal_id=f"liander-{n:06d}") for n in range(3)], LIANDER_OLD, key_id
        )
        self.single = signing.sign(anomaly(signal_id="liander-single"), LIANDER_OLD, key_id)
        self.records: dict[str, str] = {}
        audit = []
        for envelope in [*self.batch, self.single]:
            outcome = process(orjson.dumps(envelope), REGISTRY, p, NOW)
            [decision] = outcome.decisions
            audit.append(
                audit_record(decision, actor="t", partner_signature=outcome.partner_signature)
            )
            self.records[envelope["id"]] = decision.exchange_id
        store = SqlAuditStore.open(self.url, checkpointer)
        store.record(audit, [])
        store.close()
        self.bundle = tmp / "bundle.jsonl"
        code, output = self.run(
            *("audit", "export", "--out", str(self.bundle)),
            *("--database", self.url, "--keys", str(self.keys)),
        )
        assert code == 0, output

    def run(self, *args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    def prove(self, signal_id: str, *args: str, key: Any = LIANDER_OLD) -> tuple[int, str]:
        public = public_key_base64(key.public_key())
        return self.run("audit", "prove", self.records[signal_id], "--partner-key", public, *args)

    def envelope(self, envelope: dict[str, Any]) -> str:
        path = self.tmp / f"{envelope['id']}.json"
        path.write_bytes(orjson.dumps(envelope))
        return str(path)


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Audited:
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCHAKEL_AUDIT_WITNESS", raising=False)
    return Audited(tmp_path)


def test_a_batch_signed_signal_is_proven_from_the_bundle_alone(audited: Audited):
    code, output = audited.prove("liander-000001", "--bundle", str(audited.bundle))
    assert code == 0, output
    assert "PROVEN" in output and "at index 1 of a batch of 3" in output
    assert "the leaf of this record" in output
    code, output = audited.run("audit", "verify", "--bundle", str(audited.bundle))
    assert code == 0, output


def test_with_the_envelope_the_signal_itself_is_proven(audited: Audited):
    path = audited.envelope(audited.batch[2])
    code, output = audited.prove(
        "liander-000002", "--bundle", str(audited.bundle), "--envelope", path
    )
    assert code == 0 and "the envelope given" in output, output
    other = audited.envelope(audited.batch[0])
    code, output = audited.prove("liander-000002", "--database", audited.url, "--envelope", other)
    assert code == 1 and "NOT PROVEN" in output and "leaf differs" in output
    assert "871685900000000011" not in output  # never the signal's content


def test_a_single_signature_is_proven_with_its_envelope(audited: Audited):
    code, output = audited.prove("liander-single", "--database", audited.url)
    assert code == 1 and "give the envelope" in output
    path = audited.envelope(audited.single)
    code, output = audited.prove("liander-single", "--database", audited.url, "--envelope", path)
    assert code == 0, output


def test_another_partners_key_or_a_changed_proof_proves_nothing(audited: Audited):
    code, output = audited.prove("liander-000000", "--bundle", str(audited.bundle), key=PWN)
    assert code == 1 and "does not verify" in output
    # rewriting the proof in the database: the record no longer proves, and the chain breaks
    with sqlite3.connect(audited.tmp / "audit.db") as connection:
        [(body,)] = connection.execute(
            "SELECT body FROM audit_records WHERE record_id = ?",
            (audited.records["liander-000000"],),
        )
        record = orjson.loads(body)
        record["partner_signature"]["index"] = 1
        connection.execute(
            "UPDATE audit_records SET body = ? WHERE record_id = ?",
            (
                orjson.dumps(record, option=orjson.OPT_SORT_KEYS).decode(),
                audited.records["liander-000000"],
            ),
        )
    code, output = audited.prove("liander-000000", "--database", audited.url)
    assert code == 1 and "inclusion path does not lead" in output
    code, output = audited.run(
        "audit", "verify", "--database", audited.url, "--keys", str(audited.keys)
    )
    assert code == 1 and "hash mismatch" in output


def test_a_partner_key_file_and_bad_input_are_named(audited: Audited):
    pub = audited.tmp / "liander.liander-1.pub"
    raw = LIANDER_OLD.public_key().public_bytes_raw()
    pub.write_bytes(
        orjson.dumps(
            {
                "format": "schakel-partner-public-key/1",
                "partner": "liander",
                "key_id": "liander-1",
                "algorithm": "ed25519",
                "public_key": base64.b64encode(raw).decode(),
            }
        )
    )
    record = audited.records["liander-000001"]
    database = ("--database", audited.url)
    code, output = audited.run(
        "audit", "prove", record, "--partner-key", str(pub), *database, "--json"
    )
    assert code == 0 and orjson.loads(output)["proven"] is True, output
    code, output = audited.run("audit", "prove", "nope", "--partner-key", str(pub), *database)
    assert code == 2 and "no audit record 'nope'" in output
    code, output = audited.run("audit", "prove", record, "--partner-key", "not-a-key", *database)
    assert code == 2 and "neither a partner public key file" in output


def test_the_privacy_officer_doc_example_runs_as_printed(tmp_path, monkeypatch):
    """docs/privacy-officer.md, "Proving a signal to a third party": every `$ schakel` line
    runs in a folder holding the files it names; each line after it appears in its output."""
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCHAKEL_AUDIT_WITNESS", raising=False)
    audited = Audited(tmp_path, key_id="liander-2026")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", audited.url)
    monkeypatch.setenv("SCHAKEL_KEYS", str(audited.keys))
    (tmp_path / "hub.pem").write_text(
        SigningKeyFile.open(signing_key_path(audited.keys)).signing_key().public_key_pem()
    )
    raw = LIANDER_OLD.public_key().public_bytes_raw()
    (tmp_path / "liander.liander-2026.pub").write_bytes(
        orjson.dumps(
            {
                "format": "schakel-partner-public-key/1",
                "partner": "liander",
                "key_id": "liander-2026",
                "algorithm": "ed25519",
                "public_key": base64.b64encode(raw).decode(),
            }
        )
    )
    (tmp_path / "signal.json").write_bytes(orjson.dumps(audited.batch[2]))
    record_id = audited.records["liander-000002"]
    doc = (ROOT / "docs" / "privacy-officer.md").read_text(encoding="utf-8")
    section = doc.split("## Proving a signal to a third party", 1)[1].split("\n## ", 1)[0]
    [block] = re.findall(r"```console\n(.*?)```", section, flags=re.DOTALL)
    ran = 0
    for step in re.split(r"^\$ ", block.replace("RECORD_ID", record_id), flags=re.MULTILINE)[1:]:
        command, *expected = step.strip("\n").splitlines()
        args = shlex.split(command)
        assert args[0] == "schakel", command
        result = runner.invoke(app, args[1:])
        assert result.exit_code == 0, (command, result.output)
        for line in expected:
            assert line.strip() in result.output, (command, line, result.output)
        ran += 1
    assert ran == 4
