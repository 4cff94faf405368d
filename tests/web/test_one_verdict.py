"""One verdict everywhere: ``schakel audit verify``, the integrity page, its JSON API and the
``/metrics`` verification all check the witness, so a log whose newest records and
checkpoints were cut off is NOT intact in each of them. And the web process never holds the
checkpoint signing key."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from services.audit import hub_store
from services.audit.checkpoint import CheckpointPolicy
from services.audit.checkpointer import Checkpointer
from services.audit.hub_store import hub_signer, hub_witness
from services.audit.store import SqlAuditStore
from services.audit.verification import public_keys, verify_store
from services.cli.main import app as cli
from services.cli.web import web_command
from services.database.engine import make_engine
from services.keys import signing_key_path
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile
from services.metrics.settings import ENV_VERIFY_EVERY
from services.web import serve as web_serve
from services.web.serve import web_app
from services.web.users import UserStore
from tests.audit.test_store import decision_record
from tests.web.conftest import KDF_COST, PASSWORD, run_verification, sign_in

RECORDS = 30
KEPT = 25
"""The attacker cuts off the records after seq 25 and the checkpoints of them."""


@dataclass
class Hub:
    url: str
    keys_path: Path
    state: Path
    engine: Engine

    def cut_off_the_tail(self) -> None:
        with self.engine.begin() as connection:
            for table in ("audit_records", "audit_subjects", "audit_checkpoints"):
                connection.execute(text(f"DELETE FROM {table} WHERE seq > {KEPT}"))  # noqa: S608


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """A hub's database written by its router (signing key file, witness in the state
    directory, a checkpoint every 10 records) and an admin who may use the integrity page."""
    keys_path = tmp_path / "keys" / "keys.json"
    FileKeyStore.create(keys_path)
    state = tmp_path / "state"
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    checkpointer = Checkpointer(
        hub_signer(keys_path), hub_witness(state), CheckpointPolicy(every_records=10)
    )
    store = SqlAuditStore.open(url, checkpointer)
    for start in range(0, RECORDS, 10):
        store.record([decision_record(n) for n in range(start, start + 10)], [])
    store.close()
    engine = make_engine(url)
    UserStore(engine, kdf_cost=KDF_COST).add("admin", PASSWORD, "admin")
    yield Hub(url, keys_path, state, engine)
    engine.dispose()


def _web(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The web workplace as `schakel web` builds it, verifying for /metrics hourly."""
    monkeypatch.setenv(ENV_VERIFY_EVERY, "3600")
    app = web_app(hub.engine, FileKeyStore.open(hub.keys_path), hub.state)
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, "admin").status_code == 303
    return client


def _metrics_verdict(client: TestClient) -> float:
    client.get("/metrics")  # the first scrape starts the verification in the background
    registry = client.app.state.metrics_registry  # type: ignore[attr-defined]
    for _ in range(600):
        value = registry.get_sample_value("schakel_audit_verification_ok")
        if value is not None:
            return float(value)
        time.sleep(0.05)
    raise AssertionError("the /metrics verification did not finish in 30 s")


def _cli_verdict(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(hub.state))
    monkeypatch.delenv("SCHAKEL_AUDIT_WITNESS", raising=False)
    result = CliRunner().invoke(
        cli, ["audit", "verify", "--database", hub.url, "--keys", str(hub.keys_path)]
    )
    return result.exit_code, result.output


def test_an_intact_log_is_intact_everywhere(hub: Hub, monkeypatch: pytest.MonkeyPatch):
    assert _cli_verdict(hub, monkeypatch)[0] == 0
    client = _web(hub, monkeypatch)
    assert run_verification(client)["ok"] is True
    assert _metrics_verdict(client) == 1.0


def test_a_cut_off_tail_is_not_intact_in_the_cli_the_page_the_api_and_the_metrics(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
):
    hub.cut_off_the_tail()
    store = SqlAuditStore(hub.engine)
    keys = public_keys(FileKeyStore.open(hub.keys_path))
    assert verify_store(store, keys).ok  # without the witness the cut cannot be seen
    code, output = _cli_verdict(hub, monkeypatch)
    assert code == 1 and "NOT intact" in output and "cut off" in output

    client = _web(hub, monkeypatch)
    last: dict[str, Any] = run_verification(client)
    assert last["ok"] is False
    assert last["outcome"]["findings"][0]["kind"] == "truncated"
    assert client.get("/api/integrity").json()["last"]["ok"] is False
    page = client.get("/integrity").text
    assert "NOT intact" in page and "cut off" in page
    assert _metrics_verdict(client) == 0.0


def test_the_web_process_holds_no_signing_key(hub: Hub, monkeypatch: pytest.MonkeyPatch):
    """`schakel web` as deployed: the key file only (its signing key file is not even there),
    no private key in what it loads, and its audit store has no signer."""
    signing = SigningKeyFile.open(signing_key_path(hub.keys_path)).signing_key()
    signing_key_path(hub.keys_path).unlink()  # the web host is not given it

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the web process opened a signing key file")

    monkeypatch.setattr(SigningKeyFile, "open", refuse)
    monkeypatch.setattr(SigningKeyFile, "create", refuse)
    served: list[FastAPI] = []
    monkeypatch.setattr(web_serve.uvicorn, "run", lambda app, **_: served.append(app))
    signers: list[object] = []
    real_open = hub_store.open_hub_store

    def opened(url: str | None, state: Path, signer: Any) -> SqlAuditStore:
        signers.append(signer)
        return real_open(url, state, signer)

    monkeypatch.setattr(hub_store, "open_hub_store", opened)
    monkeypatch.setenv("SCHAKEL_KEYS", str(hub.keys_path))
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", hub.url)
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(hub.state))
    web_command()
    (app,) = served
    context = app.state.context
    keys = context.keys
    assert isinstance(keys, FileKeyStore)
    assert not hasattr(keys, "signing_key")
    assert keys.current_signing_key() == signing.public()  # it can verify, not sign
    key_file = hub.keys_path.read_text()
    private = signing.private_bytes
    for form in (private.hex(), repr(private), base64.b64encode(private).decode()):
        assert form not in key_file
    assert signers == [None]  # its audit store (re-identification steps) chains, never signs


def test_a_signing_key_rotated_while_the_web_runs_is_trusted(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
):
    client = _web(hub, monkeypatch)  # loads the key file now
    signing = SigningKeyFile.open(signing_key_path(hub.keys_path))
    signing.rotate(FileKeyStore.open(hub.keys_path))  # `schakel keys rotate --signing`
    checkpointer = Checkpointer(
        hub_signer(hub.keys_path), hub_witness(hub.state), CheckpointPolicy(every_records=10)
    )
    store = SqlAuditStore.open(hub.url, checkpointer)
    store.record([decision_record(n) for n in range(RECORDS, RECORDS + 10)], [])
    store.close()
    last = run_verification(client)
    assert last["ok"] is True, last["message"]
    assert last["outcome"]["newest_checkpoint"] == RECORDS + 10
