"""The checkpoint signing key lives apart from the key store: the key file that the web
workplace and verifiers get lists public signing keys only, and a key file of the older format
(private signing key inside) is migrated by moving that key into its own file."""

from __future__ import annotations

import base64
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.core.errors import KeyStoreError
from services.core.keys import DERIVATION, LEGACY_DERIVATION, PseudonymKey, SigningKey
from services.core.pseudonyms import Domain, Pseudonymiser
from services.keys import (
    SIGNING_KEY_ENV_VAR,
    default_signing_key_path,
    new_signing_key,
    signing_key_path,
)
from services.keys.file_store import FILE_MODE, FileKeyStore
from services.keys.signing_file import SigningKeyFile

CREATED = datetime(2025, 3, 1, 12, tzinfo=UTC)
POLICE = Domain("nh-drugs-2025", "politie-nh", reversible=False)


def _forms(secret: bytes) -> list[str]:
    return [secret.hex(), base64.b64encode(secret).decode(), repr(secret)]


def _write_version_1(
    path: Path, signing: SigningKey, retired: SigningKey, version: int = 1
) -> PseudonymKey:
    """A key file as releases before the split wrote it: the private signing key inside
    (version 2 also records each pseudonym key's derivation scheme; version 1 is legacy)."""
    derivation = LEGACY_DERIVATION if version == 1 else DERIVATION
    pseudonym = PseudonymKey(version=1, secret=b"\x07" * 32, created=CREATED, derivation=derivation)
    document: dict[str, Any] = {
        "format": "schakel-keys",
        "format_version": version,
        "pseudonym_keys": [
            {
                "version": 1,
                "secret": base64.b64encode(pseudonym.secret).decode(),
                "created": CREATED.isoformat(),
                "retired": None,
            }
        ],
        "signing_key": {
            "key_id": signing.key_id,
            "private_key": base64.b64encode(signing.private_bytes).decode(),
            "created": CREATED.isoformat(),
        },
        "retired_signing_keys": [
            {
                "key_id": retired.key_id,
                "public_key": base64.b64encode(retired.public_key_bytes()).decode(),
                "created": CREATED.isoformat(),
                "retired": CREATED.isoformat(),
            }
        ],
    }
    if version == 2:
        document["pseudonym_keys"][0]["derivation"] = derivation
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle)
    return pseudonym


def test_the_key_file_holds_no_private_signing_key(tmp_path: Path):
    path = tmp_path / "keys.json"
    store = FileKeyStore.create(path)
    private = SigningKeyFile.open(signing_key_path(path)).signing_key()
    text = path.read_text()
    for form in _forms(private.private_bytes):
        assert form not in text
        assert form not in repr(store)
    assert not hasattr(store, "signing_key")
    assert store.current_signing_key() == private.public()
    reopened = FileKeyStore.open(path)
    assert not hasattr(reopened, "signing_key")
    assert [k.key_id for k in reopened.public_signing_keys()] == [private.key_id]


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_key_file_is_migrated_once_and_keeps_every_key(tmp_path: Path, version: int):
    path = tmp_path / "keys.json"
    old = new_signing_key(CREATED)
    current = new_signing_key(CREATED)
    pseudonym = _write_version_1(path, current, old, version)
    store = FileKeyStore.open(path)
    signing_path = tmp_path / "keys.signing.json"
    moved = SigningKeyFile.open(signing_path).signing_key()
    assert moved.private_bytes == current.private_bytes and moved.key_id == current.key_id
    assert oct(signing_path.stat().st_mode & 0o777) == oct(FILE_MODE)
    document = json.loads(path.read_text())
    assert document["format_version"] == 3 and "signing_key" not in document
    assert [k["derivation"] for k in document["pseudonym_keys"]] == [pseudonym.derivation]
    for form in _forms(current.private_bytes):
        assert form not in path.read_text()
    assert store.pseudonym_keys() == (pseudonym,)
    assert [k.key_id for k in store.public_signing_keys()] == [old.key_id, current.key_id]
    assert store.public_signing_keys()[0].retired is not None
    # checkpoints signed before the migration, by either key, still verify
    for key in (old, current):
        listed = {k.key_id: k for k in store.public_signing_keys()}[key.key_id]
        listed.public_key().verify(key.sign(b"checkpoint"), b"checkpoint")
    before = Pseudonymiser(store).pseudonym(POLICE, "ean", "8712345678906")
    again = FileKeyStore.open(path)  # a second open changes nothing
    assert path.read_text() == json.dumps(document, indent=2) + "\n"
    assert Pseudonymiser(again).pseudonym(POLICE, "ean", "8712345678906") == before


def test_migration_follows_the_configured_signing_key_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "keys.json"
    elsewhere = tmp_path / "writers-only" / "signing.json"
    monkeypatch.setenv(SIGNING_KEY_ENV_VAR, str(elsewhere))
    assert default_signing_key_path(path) == elsewhere
    current = new_signing_key(CREATED)
    _write_version_1(path, current, new_signing_key(CREATED))
    FileKeyStore.open(path)
    assert SigningKeyFile.open(elsewhere).signing_key().key_id == current.key_id
    assert not signing_key_path(path).exists()


def test_migration_refuses_a_signing_key_file_of_another_key(tmp_path: Path):
    path = tmp_path / "keys.json"
    _write_version_1(path, new_signing_key(CREATED), new_signing_key(CREATED))
    before = path.read_text()
    SigningKeyFile.create(signing_key_path(path))  # another hub's key in the way
    with pytest.raises(KeyStoreError, match="holds another key") as caught:
        FileKeyStore.open(path)
    assert "move that file away" in str(caught.value)
    assert path.read_text() == before  # nothing lost: still the old file


def test_concurrent_opens_migrate_exactly_once(tmp_path: Path):
    path = tmp_path / "keys.json"
    current = new_signing_key(CREATED)
    _write_version_1(path, current, new_signing_key(CREATED))
    barrier = threading.Barrier(6)
    opened: list[FileKeyStore] = []
    failed: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            opened.append(FileKeyStore.open(path))
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            failed.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failed == [] and len(opened) == 6
    assert {store.current_signing_key().key_id for store in opened} == {current.key_id}
    assert SigningKeyFile.open(signing_key_path(path)).signing_key() == SigningKey(
        current.key_id, current.private_bytes, current.created
    )


def test_the_signing_key_file_must_be_owner_only(tmp_path: Path):
    path = tmp_path / "keys.signing.json"
    SigningKeyFile.create(path)
    path.chmod(0o640)
    with pytest.raises(KeyStoreError, match="accessible to group or others"):
        SigningKeyFile.open(path)


def test_a_missing_signing_key_file_says_who_needs_it(tmp_path: Path):
    with pytest.raises(KeyStoreError, match="only the router and stacking workers need it"):
        SigningKeyFile.open(tmp_path / "keys.signing.json")
