"""Key stores: shared behaviour of the file store and the memory double, then file specifics."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from services.core.errors import KeyStoreError
from services.core.keys import ManagedKeyStore
from services.core.pseudonyms import Domain, Pseudonymiser
from services.keys import DEFAULT_KEYS_PATH, KEYS_ENV_VAR, default_keys_path
from services.keys.file_store import FILE_MODE, FileKeyStore
from services.keys.testing import TEST_KEY_PREFIX, MemoryKeyStore

RIEC = Domain("nh-drugs-2025", "riec-nh", reversible=True)
POLICE = Domain("nh-drugs-2025", "politie-nh", reversible=False)


@pytest.fixture(params=["file", "memory", "memory-for-tests"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ManagedKeyStore:
    """Every key store implementation; the behaviour tests below run against each."""
    if request.param == "file":
        return FileKeyStore.create(tmp_path / "keys.json")
    if request.param == "memory":
        return MemoryKeyStore.generate()
    return MemoryKeyStore.for_tests()


def _secret_texts(store: ManagedKeyStore) -> list[str]:
    secrets = [key.secret for key in store.pseudonym_keys()]
    secrets.append(store.signing_key().private_bytes)
    return [form for s in secrets for form in (s.hex(), base64.b64encode(s).decode(), repr(s))]


# -- behaviour of every store ----------------------------------------------------------------


def test_a_new_store_has_one_active_pseudonym_key_and_a_signing_key(store):
    keys = store.pseudonym_keys()
    assert [k.version for k in keys] == [1]
    assert store.active_pseudonym_key() == keys[0]
    assert keys[0].retired is None
    assert len(keys[0].secret) == 32
    assert store.retired_signing_keys() == ()
    signing = store.signing_key()
    signing.public().public_key().verify(signing.sign(b"checkpoint"), b"checkpoint")


def test_rotation_adds_the_next_version_and_retires_the_previous(store):
    first = store.active_pseudonym_key()
    second = store.rotate_pseudonym_key()
    third = store.rotate_pseudonym_key()
    keys = store.pseudonym_keys()
    assert [k.version for k in keys] == [1, 2, 3]
    assert store.active_pseudonym_key() == third == keys[-1]
    assert second.version == 2
    assert keys[0].secret == first.secret  # the old secret is kept, not regenerated
    assert keys[0].retired is not None
    assert keys[1].retired is not None
    assert keys[2].retired is None
    assert len({k.secret for k in keys}) == 3


def test_rotated_keys_still_recognise_and_reidentify(store):
    pz = Pseudonymiser(store)
    old_one_way = pz.pseudonym(POLICE, "ean", "8712345678906")
    old_reversible = pz.pseudonym(RIEC, "ean", "8712345678906")
    store.rotate_pseudonym_key()
    assert pz.pseudonym(POLICE, "ean", "8712345678906") != old_one_way
    assert pz.all_pseudonyms(POLICE, "ean", "8712345678906")[0] == old_one_way
    assert pz.reidentify(RIEC, old_reversible) == ("ean", "8712345678906")


def test_signing_rotation_keeps_the_old_public_key(store):
    old = store.signing_key()
    signature = old.sign(b"checkpoint 1")
    new = store.rotate_signing_key()
    assert new.key_id != old.key_id
    assert store.signing_key() == new
    (retired,) = store.retired_signing_keys()
    assert retired.key_id == old.key_id
    assert retired.retired is not None
    retired.public_key().verify(signature, b"checkpoint 1")
    with pytest.raises(InvalidSignature):
        new.public().public_key().verify(signature, b"checkpoint 1")


def test_reprs_show_no_key_material(store):
    store.rotate_pseudonym_key()
    texts = [repr(store), str(store), repr(store.signing_key())]
    texts.extend(repr(k) for k in store.pseudonym_keys())
    shown = " ".join(texts)
    for secret in _secret_texts(store):
        assert secret not in shown


# -- the test double -------------------------------------------------------------------------


def test_test_keys_are_deterministic_and_marked():
    one, two = MemoryKeyStore.for_tests(), MemoryKeyStore.for_tests()
    assert one.active_pseudonym_key().secret == two.active_pseudonym_key().secret
    assert one.rotate_pseudonym_key().secret == two.rotate_pseudonym_key().secret
    assert one.signing_key().key_id.startswith(TEST_KEY_PREFIX)
    assert one.rotate_signing_key().private_bytes == two.rotate_signing_key().private_bytes
    assert "NOT SECRET" in repr(one)
    other = MemoryKeyStore.for_tests(b"other seed")
    assert other.active_pseudonym_key().secret != one.pseudonym_keys()[0].secret
    assert "NOT SECRET" not in repr(MemoryKeyStore.generate())


def test_random_memory_stores_differ():
    assert (
        MemoryKeyStore.generate().active_pseudonym_key().secret
        != MemoryKeyStore.generate().active_pseudonym_key().secret
    )


# -- the file store --------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_create_writes_an_owner_only_file_even_with_a_lax_umask(tmp_path):
    path = tmp_path / "keys.json"
    previous = os.umask(0)
    try:
        FileKeyStore.create(path)
    finally:
        os.umask(previous)
    assert _mode(path) == FILE_MODE
    assert _leftovers(tmp_path) == []


def test_create_makes_missing_parent_directories(tmp_path):
    path = tmp_path / "var" / "nested" / "keys.json"
    store = FileKeyStore.create(path)
    assert store.path == path
    assert _mode(path.parent) & 0o077 == 0


def test_create_refuses_to_overwrite(tmp_path):
    path = tmp_path / "keys.json"
    FileKeyStore.create(path)
    before = path.read_bytes()
    with pytest.raises(KeyStoreError, match="already exists; refusing to overwrite") as caught:
        FileKeyStore.create(path)
    assert str(path) in str(caught.value)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_create_refuses_to_overwrite_any_file(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("not mine")
    with pytest.raises(KeyStoreError, match="already exists"):
        FileKeyStore.create(path)
    assert path.read_text() == "not mine"


def test_concurrent_creates_leave_exactly_one_complete_store(tmp_path):
    path = tmp_path / "keys.json"
    barrier = threading.Barrier(8)
    made: list[FileKeyStore] = []
    refused: list[KeyStoreError] = []

    def create() -> None:
        barrier.wait()
        try:
            made.append(FileKeyStore.create(path))
        except KeyStoreError as error:
            refused.append(error)

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1
    assert len(refused) == 7
    assert FileKeyStore.open(path).pseudonym_keys() == made[0].pseudonym_keys()
    assert _leftovers(tmp_path) == []


def test_file_round_trips(tmp_path):
    path = tmp_path / "keys.json"
    created = FileKeyStore.create(path)
    created.rotate_pseudonym_key()
    created.rotate_signing_key()
    opened = FileKeyStore.open(path)
    assert opened.pseudonym_keys() == created.pseudonym_keys()
    assert opened.active_pseudonym_key() == created.active_pseudonym_key()
    assert opened.signing_key() == created.signing_key()
    assert opened.retired_signing_keys() == created.retired_signing_keys()


def test_file_format(tmp_path):
    path = tmp_path / "keys.json"
    store = FileKeyStore.create(path)
    document = json.loads(path.read_text())
    assert document["format"] == "schakel-keys"
    assert document["format_version"] == 2
    (key,) = document["pseudonym_keys"]
    assert key["version"] == 1
    assert key["derivation"] == 2  # a new key derives internal domains with their own label
    assert base64.b64decode(key["secret"]) == store.active_pseudonym_key().secret
    assert key["retired"] is None
    assert document["signing_key"]["key_id"] == store.signing_key().key_id
    assert base64.b64decode(document["signing_key"]["private_key"]) == (
        store.signing_key().private_bytes
    )
    assert document["retired_signing_keys"] == []


def test_rotation_is_persisted_atomically_with_the_same_mode(tmp_path):
    path = tmp_path / "keys.json"
    store = FileKeyStore.create(path)
    inode = path.stat().st_ino
    store.rotate_pseudonym_key()
    assert path.stat().st_ino != inode  # replaced by rename, not rewritten in place
    assert _mode(path) == FILE_MODE
    assert _leftovers(tmp_path) == []
    assert [k.version for k in FileKeyStore.open(path).pseudonym_keys()] == [1, 2]


def test_reload_picks_up_a_rotation_by_another_process(tmp_path):
    path = tmp_path / "keys.json"
    hub = FileKeyStore.create(path)
    pz = Pseudonymiser(hub)
    before = pz.pseudonym(POLICE, "ean", "8712345678906")
    FileKeyStore.open(path).rotate_pseudonym_key()  # e.g. `schakel keys rotate`
    assert hub.active_pseudonym_key().version == 1
    hub.reload()
    assert hub.active_pseudonym_key().version == 2
    assert pz.key_version_of(pz.pseudonym(POLICE, "ean", "8712345678906")) == 2
    assert pz.all_pseudonyms(POLICE, "ean", "8712345678906")[0] == before


def test_a_stale_store_rotating_does_not_lose_a_key(tmp_path):
    path = tmp_path / "keys.json"
    first = FileKeyStore.create(path)
    second = FileKeyStore.open(path)
    first.rotate_pseudonym_key()
    second.rotate_pseudonym_key()  # knows only version 1, must build on the file's version 2
    keys = FileKeyStore.open(path).pseudonym_keys()
    assert [k.version for k in keys] == [1, 2, 3]
    assert keys[1].secret == first.active_pseudonym_key().secret
    first.rotate_signing_key()
    second.rotate_signing_key()
    assert len(FileKeyStore.open(path).retired_signing_keys()) == 2


def test_open_refuses_a_missing_file_and_says_how_to_create_it(tmp_path):
    path = tmp_path / "keys.json"
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore.open(path)
    assert f"run `schakel keys init --path {path}`" in str(caught.value)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o602])
def test_open_refuses_a_file_others_can_access(tmp_path, mode):
    path = tmp_path / "keys.json"
    FileKeyStore.create(path)
    path.chmod(mode)
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore.open(path)
    assert f"chmod 600 {path}" in str(caught.value)
    assert f"{mode:04o}" in str(caught.value)


def test_open_accepts_a_read_only_owner_file(tmp_path):
    path = tmp_path / "keys.json"
    FileKeyStore.create(path)
    path.chmod(0o400)
    assert FileKeyStore.open(path).active_pseudonym_key().version == 1


def test_open_refuses_a_directory(tmp_path):
    directory = tmp_path / "keys.json"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyStoreError, match="not a regular file"):
        FileKeyStore.open(directory)


def _write(path: Path, content: str | bytes) -> None:
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


Edit = Callable[[dict], None]


def _set(*keys: str | int, value: object) -> Edit:
    def edit(document: dict) -> None:
        target = document
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _delete(*keys: str | int) -> Edit:
    def edit(document: dict) -> None:
        target = document
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return edit


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_set("format", value="something-else"), "not a Schakel key file"),
        (_set("format_version", value=3), "format_version 3 is not supported"),
        (_set("format_version", value=True), "is not supported"),
        (_delete("pseudonym_keys", 0, "derivation"), "derivation is missing"),
        (_set("pseudonym_keys", 0, "derivation", value=3), "derivation must be one of 1, 2"),
        (_set("pseudonym_keys", 0, "derivation", value=True), "derivation must be one of"),
        (_delete("format_version"), "format_version"),
        (_delete("pseudonym_keys"), "pseudonym_keys is missing"),
        (_set("pseudonym_keys", value={}), "pseudonym_keys must be a list"),
        (_set("pseudonym_keys", value=[]), "no pseudonym key"),
        (_set("pseudonym_keys", 0, value="key"), r"pseudonym_keys\[0\] must be an object"),
        (_set("pseudonym_keys", 0, "version", value="1"), "version must be an integer"),
        (_set("pseudonym_keys", 0, "version", value=True), "version must be an integer"),
        (_set("pseudonym_keys", 0, "version", value=2), "version 2 where version 1"),
        (_set("pseudonym_keys", 0, "secret", value="!!"), "secret is not valid base64"),
        (_set("pseudonym_keys", 0, "secret", value="AAAA"), "secret must decode to 32 bytes"),
        (_set("pseudonym_keys", 0, "secret", value=5), "secret must be a base64 string"),
        (_delete("pseudonym_keys", 0, "created"), "created is missing"),
        (_set("pseudonym_keys", 0, "created", value="yesterday"), "not an ISO 8601 time"),
        (_set("pseudonym_keys", 0, "created", value="2025-01-01T00:00:00"), "UTC offset"),
        (_set("pseudonym_keys", 0, "retired", value="2025-01-01T00:00:00Z"), "is retired"),
        (_delete("signing_key"), "signing_key is missing"),
        (_set("signing_key", "key_id", value=""), "key_id must be a non-empty string"),
        (_set("signing_key", "key_id", value="ed25519-0000"), "does not match"),
        (_set("signing_key", "private_key", value="AAAA"), "must decode to 32 bytes"),
        (_set("retired_signing_keys", value=[{"key_id": "x"}]), "public_key is missing"),
    ],
)
def test_open_refuses_malformed_files_without_showing_key_material(tmp_path, edit, reason):
    path = tmp_path / "keys.json"
    store = FileKeyStore.create(path)
    document = json.loads(path.read_text())
    edit(document)
    _write(path, json.dumps(document))
    with pytest.raises(KeyStoreError, match=reason) as caught:
        FileKeyStore.open(path)
    message = str(caught.value)
    assert str(path) in message
    assert "malformed" in message
    for secret in _secret_texts(store):
        assert secret not in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "invalid JSON at line 1"),
        ('{"format": ', "invalid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        ("[]", "the document must be an object"),
    ],
)
def test_open_refuses_files_that_are_not_key_files(tmp_path, content, reason):
    path = tmp_path / "keys.json"
    _write(path, content)
    with pytest.raises(KeyStoreError, match=reason) as caught:
        FileKeyStore.open(path)
    assert "restore it from a backup" in str(caught.value)


def test_json_errors_do_not_quote_the_file(tmp_path):
    path = tmp_path / "keys.json"
    store = FileKeyStore.create(path)
    text = path.read_text()
    _write(path, text[: text.index('"secret"') + 30])  # cut in the middle of a secret
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore.open(path)
    secret = base64.b64encode(store.active_pseudonym_key().secret).decode()
    assert secret[:10] not in str(caught.value)


# -- default location ------------------------------------------------------------------------


def test_default_path_is_var_keys_json(monkeypatch):
    monkeypatch.delenv(KEYS_ENV_VAR, raising=False)
    monkeypatch.delenv("SCHAKEL_STATE_DIR", raising=False)
    assert default_keys_path() == DEFAULT_KEYS_PATH == Path("var/keys.json")


def test_default_path_is_in_the_state_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(KEYS_ENV_VAR, raising=False)
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    assert default_keys_path() == tmp_path / "state" / "keys.json"


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(KEYS_ENV_VAR, str(tmp_path / "hub.keys.json"))
    assert default_keys_path() == tmp_path / "hub.keys.json"
    monkeypatch.setenv(KEYS_ENV_VAR, "")
    monkeypatch.delenv("SCHAKEL_STATE_DIR", raising=False)
    assert default_keys_path() == DEFAULT_KEYS_PATH
