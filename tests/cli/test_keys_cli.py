"""``schakel keys``: init, rotate, list and public-key, through Typer's test runner."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from typer.testing import CliRunner

from services.cli import keys as keys_cli
from services.cli import main as cli_main
from services.keys import KEYS_ENV_VAR, signing_key_path
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile

runner = CliRunner()


def _run(*args: str | Path, env: dict[str, str | None] | None = None):
    return runner.invoke(keys_cli.app, [str(a) for a in args], env=env)


def _signing(path: Path) -> SigningKeyFile:
    return SigningKeyFile.open(signing_key_path(path))


def _secret_texts(path: Path) -> list[str]:
    store = FileKeyStore.open(path)
    raw = [k.secret for k in store.pseudonym_keys()] + [_signing(path).signing_key().private_bytes]
    return [form for s in raw for form in (base64.b64encode(s).decode(), s.hex())]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys.json"
    result = _run("init", "--path", path)
    assert result.exit_code == 0, result.output
    return path


def test_init_creates_the_store_and_shows_only_public_facts(tmp_path):
    path = tmp_path / "var" / "keys.json"
    result = _run("init", "--path", path)
    assert result.exit_code == 0, result.output
    FileKeyStore.open(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(signing_key_path(path).stat().st_mode) == 0o600
    assert str(path) in result.stdout and str(signing_key_path(path)) in result.stdout
    signing = _signing(path).signing_key()
    assert signing.fingerprint() in result.stdout
    assert signing.key_id in result.stdout
    for secret in _secret_texts(path):
        assert secret not in result.output


def test_init_refuses_an_existing_store(key_file):
    before = key_file.read_bytes()
    result = _run("init", "--path", key_file)
    assert result.exit_code == 1
    assert "already exists; refusing to overwrite" in result.stderr
    assert str(key_file) in result.stderr
    assert key_file.read_bytes() == before


def test_rotate_adds_a_pseudonym_key_version(key_file):
    result = _run("rotate", "--path", key_file)
    assert result.exit_code == 0, result.output
    assert "version 2" in result.stdout
    store = FileKeyStore.open(key_file)
    assert [k.version for k in store.pseudonym_keys()] == [1, 2]
    assert store.active_pseudonym_key().version == 2
    for secret in _secret_texts(key_file):
        assert secret not in result.output


def test_rotate_signing_replaces_the_signing_key(key_file):
    old = _signing(key_file).signing_key().key_id
    result = _run("rotate", "--path", key_file, "--signing")
    assert result.exit_code == 0, result.output
    store = FileKeyStore.open(key_file)
    new = _signing(key_file).signing_key()
    assert new.key_id != old
    assert new.key_id in result.stdout
    assert store.current_signing_key() == new.public()
    assert [k.key_id for k in store.retired_signing_keys()] == [old]
    assert [k.version for k in store.pseudonym_keys()] == [1]


def test_list_shows_versions_and_which_is_active(key_file):
    _run("rotate", "--path", key_file)
    _run("rotate", "--path", key_file, "--signing")
    result = _run("list", "--path", key_file)
    assert result.exit_code == 0, result.output
    store = FileKeyStore.open(key_file)
    lines = result.stdout.splitlines()
    version_rows = [line for line in lines if line.startswith("│ 1 ") or line.startswith("│ 2 ")]
    assert len(version_rows) == 2
    assert "no" in version_rows[0].split("│")[4]
    assert "yes" in version_rows[1].split("│")[4]
    assert store.current_signing_key().key_id in result.stdout
    assert store.retired_signing_keys()[0].key_id in result.stdout
    for secret in _secret_texts(key_file):
        assert secret not in result.output


def test_public_key_prints_the_checkpoint_verification_key(key_file):
    result = _run("public-key", "--path", key_file)
    assert result.exit_code == 0, result.output
    public = load_pem_public_key(result.stdout.encode())
    assert isinstance(public, Ed25519PublicKey)
    signing = _signing(key_file).signing_key()
    public.verify(signing.sign(b"checkpoint"), b"checkpoint")


@pytest.mark.parametrize("command", ["list", "rotate", "public-key"])
def test_a_missing_store_says_how_to_create_one(tmp_path, command):
    path = tmp_path / "keys.json"
    result = _run(command, "--path", path)
    assert result.exit_code == 1
    assert f"schakel keys init --path {path}" in result.stderr
    assert "Traceback" not in result.output


def test_a_readable_store_is_refused_with_the_fix(key_file):
    key_file.chmod(0o644)
    result = _run("list", "--path", key_file)
    assert result.exit_code == 1
    assert f"chmod 600 {key_file}" in result.stderr


def test_the_environment_chooses_the_default_store(tmp_path):
    path = tmp_path / "hub.keys.json"
    assert _run("init", env={KEYS_ENV_VAR: str(path)}).exit_code == 0
    assert path.exists()
    result = _run("list", env={KEYS_ENV_VAR: str(path)})
    assert result.exit_code == 0, result.output


def test_without_configuration_the_store_is_var_keys_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCHAKEL_STATE_DIR", raising=False)
    result = _run("init", env={KEYS_ENV_VAR: None})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "var" / "keys.json").exists()
    assert os.path.join("var", "keys.json") in result.stdout


def _main_app() -> typer.Typer:
    return cli_main.app


def test_the_keys_group_is_registered_on_the_schakel_command(tmp_path):
    app = _main_app()
    path = tmp_path / "keys.json"
    result = runner.invoke(app, ["keys", "init", "--path", str(path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["keys", "list", "--path", str(path)])
    assert result.exit_code == 0, result.output
    assert "Pseudonym keys" in result.stdout
