"""The outcomes worker's start-up path, as `schakel outcomes run` takes it: key file, covenants,
the audit store as a signing writer, the outcome store — everything but the broker.

A merge once changed ``open_hub_store``'s arguments under the worker and it crashed at start;
no test built it. These do, with a real key file and its signing key beside it, in a
temporary state directory (never the checkout's ``var/``).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from services.audit.checkpoint import Checkpoint
from services.core.errors import KeyStoreError
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile
from services.outcomes.worker import build_worker
from services.router.topics import signals_topic
from tests.outcomes import helpers


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    keys = tmp_path / "keys" / "keys.json"
    FileKeyStore.create(keys)
    for name, value in {
        "SCHAKEL_KEYS": str(keys),
        "SCHAKEL_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "SCHAKEL_STATE_DIR": str(tmp_path / "state"),
        "SCHAKEL_AUDIT_WITNESS": str(tmp_path / "witness.jsonl"),
        "SCHAKEL_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # never contacted: nothing is started
        "SCHAKEL_DEMO": "1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SCHAKEL_SIGNING_KEY", raising=False)
    monkeypatch.delenv("SCHAKEL_COVENANTS", raising=False)
    return tmp_path


def test_the_worker_builds_and_signs_its_audit_records_into_the_witness(hub_env: Path):
    worker = build_worker(batch_max=10)
    try:
        assert signals_topic("politie-nh") in worker.topics
        assert signals_topic("liander") in worker.topics
        assert list(worker.store.signals()) == []  # the outcome tables exist
        extracted, _ = helpers.make_hub().feed([helpers.finding()])
        worker.audit.record(extracted.audit, [])
    finally:
        worker.close()  # signs the last checkpoint, as on shutdown
    lines = (hub_env / "witness.jsonl").read_text().splitlines()
    assert lines, "the writer appended its checkpoint to the witness"
    signing = SigningKeyFile.open(hub_env / "keys" / "keys.signing.json").signing_key()
    checkpoint = Checkpoint.from_json(orjson.loads(lines[-1]), "witness")
    assert checkpoint.key_id == signing.key_id
    assert checkpoint.verify(signing.public_key_bytes())


def test_without_its_signing_key_the_worker_refuses_to_start_saying_which_file(hub_env: Path):
    (hub_env / "keys" / "keys.signing.json").unlink()
    with pytest.raises(KeyStoreError, match=r"keys\.signing\.json"):
        build_worker()
