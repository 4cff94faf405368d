"""One setting places all of the hub's state (issue 15, item 12): ``SCHAKEL_STATE_DIR`` moves
the key file, the audit database and the witness too, not only broker data and logs; the
variables that place a part elsewhere on purpose are named where the hub says where it is."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.audit.hub_store import witness_path
from services.cli import keys as keys_cli
from services.config import Paths
from services.database.engine import database_url
from services.hub.locations import MEMORY_ONLY, PERSISTENT, durability, state_locations
from services.hub.state import HubState
from services.keys import default_keys_path


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory is not the state directory's parent."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_the_state_directory_places_every_part(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
):
    state = tmp_path / "state"
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(state))
    paths = Paths.from_env()
    assert default_keys_path() == paths.key_file == state / "keys.json"
    assert database_url() == paths.database_url == f"sqlite:///{state}/audit.db"
    assert witness_path(paths.state) == state / "audit-witness.jsonl"
    assert (paths.broker, paths.logs) == (state / "broker", state / "logs")
    # a command that makes state makes it there, and nothing in the working directory
    result = CliRunner().invoke(keys_cli.app, ["init"])
    assert result.exit_code == 0, result.output
    assert (state / "keys.json").is_file()
    assert list(elsewhere.iterdir()) == []


def test_where_each_part_is_with_the_ones_placed_apart_named(
    tmp_path: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
):
    state = tmp_path / "state"
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(state))
    paths = Paths.from_env()
    where = {p.part: p.line() for p in state_locations(paths, state / "w.jsonl", paths.broker)}
    assert where == {
        "state": str(state),
        "keys": str(state / "keys.json"),
        "audit": f"sqlite:///{state}/audit.db",
        "witness": str(state / "w.jsonl"),
        "kafka data": str(state / "broker"),
        "logs": str(state / "logs"),
    }
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "secrets" / "keys.json"))
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", "postgresql+psycopg://hub:s3cret@db/schakel")
    monkeypatch.setenv("SCHAKEL_STATE_DIR", "relative-state")
    paths = Paths.from_env()
    witness = tmp_path / "offsite" / "witness.jsonl"
    where = {
        p.part: p.line() for p in state_locations(paths, witness, paths.broker, memory_only=True)
    }
    assert where["state"] == str(elsewhere / "relative-state")  # printed absolute
    assert where["keys"] == f"{tmp_path}/secrets/keys.json (set apart by SCHAKEL_KEYS)"
    assert where["audit"] == (
        "postgresql+psycopg://hub:***@db/schakel (set apart by SCHAKEL_DATABASE_URL)"
    )
    assert where["witness"] == f"{witness} (set apart by SCHAKEL_AUDIT_WITNESS)"
    assert where["kafka data"].startswith("in memory only")
    assert "s3cret" not in " ".join(where.values())


def test_the_broker_says_what_it_keeps():
    assert durability("noida", True) == PERSISTENT
    assert durability("tansu", False) == MEMORY_ONLY
    assert "MEMORY ONLY" in MEMORY_ONLY and "SCHAKEL_EMBEDDED_BROKER=noida" in MEMORY_ONLY
    assert durability("external", None).startswith("external cluster")


def test_hub_json_tells_client_commands_what_the_broker_keeps(tmp_path: Path):
    path = tmp_path / "hub.json"
    HubState("127.0.0.1:9092", "sqlite:///x.db", 42, broker="tansu", persistent=False).write(path)
    assert HubState.read(path) == HubState(
        "127.0.0.1:9092", "sqlite:///x.db", 42, broker="tansu", persistent=False
    )
    # written by an older hub: no broker fields, read as an external cluster's
    path.write_text('{"bootstrap": "127.0.0.1:9092", "database_url": "sqlite://", "pid": 7}')
    assert HubState.read(path) == HubState(
        "127.0.0.1:9092", "sqlite://", 7, broker="external", persistent=None
    )
    for broken in ("[]", "{}", "not json"):
        path.write_text(broken)
        assert HubState.read(path) is None
