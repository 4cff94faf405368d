"""A key store in one JSON file, readable only by its owner.

File format (``format_version`` 2)::

    {
      "format": "schakel-keys",
      "format_version": 2,
      "pseudonym_keys": [
        {"version": 1, "secret": "<base64, 32 bytes>",
         "created": "2025-03-01T12:00:00+00:00", "retired": null, "derivation": 2}
      ],
      "signing_key": {"key_id": "ed25519-<16 hex>", "private_key": "<base64, 32 raw bytes>",
                      "created": "2025-03-01T12:00:00+00:00"},
      "retired_signing_keys": [
        {"key_id": "...", "public_key": "<base64, 32 raw bytes>",
         "created": "...", "retired": "..."}
      ]
    }

``derivation`` is the key's scheme for deriving domain keys (:mod:`services.core.keys`). A
version 1 file (written before the scheme was recorded) is read with every key on the legacy
scheme 1, which is how its pseudonyms were made; it is written back as version 2, so a Schakel
too old to know the field refuses the file instead of deriving differently.

The file is created atomically with mode 0600 (a temporary file opened with ``O_CREAT|O_EXCL``
is hard-linked into place, which fails rather than overwrite an existing store) and updated by
writing a temporary file and renaming it over the old one, so a crash never leaves a half
written key file. Rotations lock the directory and re-read the file first, so two operators
rotating at once cannot lose a key. Loading refuses a file that group or others may access.

Error messages name the file and the fix; neither they nor any ``repr`` contain key material.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import secrets
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from services.core.errors import KeyStoreError
from services.core.keys import (
    DERIVATIONS,
    ED25519_KEY_BYTES,
    LEGACY_DERIVATION,
    SECRET_BYTES,
    PseudonymKey,
    PublicSigningKey,
    SigningKey,
    active_key,
    check_pseudonym_keys,
    rotated,
    signing_key_id,
)
from services.keys import new_pseudonym_secret, new_signing_key, utc_now

FORMAT: Final = "schakel-keys"
FORMAT_VERSION: Final = 2
READABLE_VERSIONS: Final = frozenset({1, FORMAT_VERSION})
FILE_MODE: Final = 0o600
_MAX_FILE_BYTES: Final = 1 << 20  # a key file is a few KiB; anything bigger is not ours


@dataclass(frozen=True, slots=True)
class _State:
    """Everything a key file holds."""

    pseudonym_keys: tuple[PseudonymKey, ...]
    signing_key: SigningKey
    retired_signing_keys: tuple[PublicSigningKey, ...]

    def __post_init__(self) -> None:
        check_pseudonym_keys(self.pseudonym_keys)


class FileKeyStore:
    """The hub's keys in a JSON file. Build with :meth:`create` or :meth:`open`.

    Reads are served from memory; :meth:`reload` picks up a rotation made by another process
    (for example ``schakel keys rotate`` while the hub runs).
    """

    __slots__ = ("_active", "_path", "_state")

    def __init__(self, path: Path, state: _State) -> None:
        """Wrap an already loaded state; use :meth:`create` or :meth:`open` instead."""
        self._path = path
        self._state = state
        self._active = active_key(state.pseudonym_keys)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> FileKeyStore:
        """Write a new store with one pseudonym key and one signing key.

        Refuses (:class:`KeyStoreError`) to overwrite an existing file. Creates the parent
        directory (mode 0700) if needed.
        """
        path = Path(path)
        now = utc_now()
        state = _State(
            pseudonym_keys=(PseudonymKey(version=1, secret=new_pseudonym_secret(), created=now),),
            signing_key=new_signing_key(now),
            retired_signing_keys=(),
        )
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise KeyStoreError(
                f"cannot create the directory for key store {path}: {exc.strerror}"
            ) from None
        _write_new(path, _encode(state))
        return cls(path, state)

    @classmethod
    def open(cls, path: Path | str) -> FileKeyStore:
        """Load and check an existing store (ownership-only permissions, well-formed keys)."""
        path = Path(path)
        return cls(path, _load(path))

    # -- KeyStore ------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The key file."""
        return self._path

    def pseudonym_keys(self) -> Sequence[PseudonymKey]:
        """All pseudonym key versions, ascending."""
        return self._state.pseudonym_keys

    def active_pseudonym_key(self) -> PseudonymKey:
        """The newest non-retired pseudonym key."""
        return self._active

    def signing_key(self) -> SigningKey:
        """The current checkpoint signing key."""
        return self._state.signing_key

    def retired_signing_keys(self) -> Sequence[PublicSigningKey]:
        """Public halves of earlier signing keys, oldest first."""
        return self._state.retired_signing_keys

    # -- operations ----------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the file, e.g. after another process rotated a key."""
        self._set(_load(self._path))

    def rotate_pseudonym_key(self) -> PseudonymKey:
        """Add pseudonym key version n+1 and retire version n; return the new key.

        The retired key stays in the file, so its pseudonyms remain recognisable and, where
        allowed, re-identifiable.
        """
        with _locked(self._path):
            current = _load(self._path)
            now = utc_now()
            state = _State(
                pseudonym_keys=rotated(current.pseudonym_keys, new_pseudonym_secret(), now),
                signing_key=current.signing_key,
                retired_signing_keys=current.retired_signing_keys,
            )
            _replace(self._path, _encode(state))
        self._set(state)
        return self._active

    def rotate_signing_key(self) -> SigningKey:
        """Replace the signing key; keep the old public key to verify older checkpoints."""
        with _locked(self._path):
            current = _load(self._path)
            now = utc_now()
            state = _State(
                pseudonym_keys=current.pseudonym_keys,
                signing_key=new_signing_key(now),
                retired_signing_keys=(
                    *current.retired_signing_keys,
                    current.signing_key.public(retired=now),
                ),
            )
            _replace(self._path, _encode(state))
        self._set(state)
        return state.signing_key

    def _set(self, state: _State) -> None:
        # Publish the key ring before the new active key, so a concurrent reader never gets an
        # active key that pseudonym_keys does not list yet.
        active = active_key(state.pseudonym_keys)
        self._state = state
        self._active = active

    def __repr__(self) -> str:
        keys = self._state.pseudonym_keys
        return (
            f"FileKeyStore(path={str(self._path)!r}, pseudonym_versions={len(keys)}, "
            f"active_version={self._active.version}, "
            f"signing_key={self._state.signing_key.key_id!r})"
        )


# -- encoding ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _encode(state: _State) -> bytes:
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pseudonym_keys": [
            {
                "version": key.version,
                "secret": _b64(key.secret),
                "created": _time(key.created),
                "retired": _time(key.retired),
                "derivation": key.derivation,
            }
            for key in state.pseudonym_keys
        ],
        "signing_key": {
            "key_id": state.signing_key.key_id,
            "private_key": _b64(state.signing_key.private_bytes),
            "created": _time(state.signing_key.created),
        },
        "retired_signing_keys": [
            {
                "key_id": key.key_id,
                "public_key": _b64(key.public_bytes),
                "created": _time(key.created),
                "retired": _time(key.retired),
            }
            for key in state.retired_signing_keys
        ],
    }
    return (json.dumps(document, indent=2) + "\n").encode("utf-8")


class _Malformed(Exception):  # noqa: N818 - internal signal, turned into KeyStoreError
    """A field of the key file is wrong; the message names the field, never its value."""


def _field(obj: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in obj:
        raise _Malformed(f"{where}.{name} is missing")
    return obj[name]


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"{where} must be an object")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Malformed(f"{where} must be a list")
    return value


def _bytes(obj: Mapping[str, Any], name: str, where: str, length: int) -> bytes:
    value = _field(obj, name, where)
    if not isinstance(value, str):
        raise _Malformed(f"{where}.{name} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _Malformed(f"{where}.{name} is not valid base64") from None
    if len(raw) != length:
        raise _Malformed(f"{where}.{name} must decode to {length} bytes")
    return raw


def _datetime(obj: Mapping[str, Any], name: str, where: str) -> datetime:
    value = _field(obj, name, where)
    if not isinstance(value, str):
        raise _Malformed(f"{where}.{name} must be an ISO 8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Malformed(f"{where}.{name} is not an ISO 8601 time") from None
    if parsed.utcoffset() is None:
        raise _Malformed(f"{where}.{name} must carry a UTC offset")
    return parsed


def _optional_datetime(obj: Mapping[str, Any], name: str, where: str) -> datetime | None:
    if obj.get(name) is None:
        return None
    return _datetime(obj, name, where)


def _derivation(obj: Mapping[str, Any], where: str) -> int:
    value = _field(obj, "derivation", where)
    if isinstance(value, bool) or value not in DERIVATIONS:
        raise _Malformed(
            f"{where}.derivation must be one of {', '.join(str(d) for d in sorted(DERIVATIONS))}"
        )
    return int(value)


def _key_id(obj: Mapping[str, Any], where: str) -> str:
    value = _field(obj, "key_id", where)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{where}.key_id must be a non-empty string")
    return value


def _decode(document: Any) -> _State:
    root = _object(document, "the document")
    if root.get("format") != FORMAT:
        raise _Malformed(f'"format" must be "{FORMAT}"; this is not a Schakel key file')
    version = root.get("format_version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        shown = version if isinstance(version, int) else "(missing or not a number)"
        raise _Malformed(
            f"format_version {shown} is not supported (this Schakel reads versions "
            f"{', '.join(str(v) for v in sorted(READABLE_VERSIONS))}); use the Schakel "
            "release that wrote it"
        )
    pseudonym_keys = []
    for index, item in enumerate(_list(_field(root, "pseudonym_keys", "file"), "pseudonym_keys")):
        where = f"pseudonym_keys[{index}]"
        entry = _object(item, where)
        number = _field(entry, "version", where)
        if isinstance(number, bool) or not isinstance(number, int):
            raise _Malformed(f"{where}.version must be an integer")
        pseudonym_keys.append(
            PseudonymKey(
                version=number,
                secret=_bytes(entry, "secret", where, SECRET_BYTES),
                created=_datetime(entry, "created", where),
                retired=_optional_datetime(entry, "retired", where),
                derivation=_derivation(entry, where) if version >= 2 else LEGACY_DERIVATION,
            )
        )
    signing = _object(_field(root, "signing_key", "file"), "signing_key")
    signing_key = SigningKey(
        key_id=_key_id(signing, "signing_key"),
        private_bytes=_bytes(signing, "private_key", "signing_key", ED25519_KEY_BYTES),
        created=_datetime(signing, "created", "signing_key"),
    )
    if signing_key.key_id != signing_key_id(signing_key.public_key_bytes()):
        raise _Malformed("signing_key.key_id does not match signing_key.private_key")
    retired_signing = []
    for index, item in enumerate(
        _list(root.get("retired_signing_keys", []), "retired_signing_keys")
    ):
        where = f"retired_signing_keys[{index}]"
        entry = _object(item, where)
        retired_signing.append(
            PublicSigningKey(
                key_id=_key_id(entry, where),
                public_bytes=_bytes(entry, "public_key", where, ED25519_KEY_BYTES),
                created=_datetime(entry, "created", where),
                retired=_datetime(entry, "retired", where),
            )
        )
    return _State(tuple(pseudonym_keys), signing_key, tuple(retired_signing))


# -- file access ---------------------------------------------------------------------------


def _load(path: Path) -> _State:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise KeyStoreError(
            f"key store {path} does not exist; run `schakel keys init --path {path}` to create it"
        ) from None
    except PermissionError:
        raise KeyStoreError(
            f"cannot read key store {path}: permission denied; run Schakel as the file's owner"
        ) from None
    except OSError as exc:
        raise KeyStoreError(f"cannot open key store {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyStoreError(f"key store {path} is not a regular file")
        if info.st_mode & 0o077:
            raise KeyStoreError(
                f"key store {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
            )
        if info.st_size > _MAX_FILE_BYTES:
            raise KeyStoreError(f"key store {path} is too large to be a Schakel key file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            content = handle.read(_MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    try:
        document = json.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise KeyStoreError(
            f"key store {path} is malformed: it is not UTF-8 text; restore it from a backup"
        ) from None
    except json.JSONDecodeError as exc:
        raise KeyStoreError(
            f"key store {path} is malformed: invalid JSON at line {exc.lineno}, column "
            f"{exc.colno}; restore it from a backup"
        ) from None
    try:
        return _decode(document)
    except _Malformed as exc:
        raise KeyStoreError(
            f"key store {path} is malformed: {exc}; restore it from a backup"
        ) from None
    except KeyStoreError as exc:
        raise KeyStoreError(f"key store {path} is malformed: {exc}") from None


def _temp_file(path: Path, content: bytes) -> Path:
    """Write ``content`` to a fresh owner-only file next to ``path``, flushed to disk."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # exact mode, whatever the umask
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temp


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_new(path: Path, content: bytes) -> None:
    """Create ``path`` with ``content`` atomically; never overwrite an existing file."""
    try:
        temp = _temp_file(path, content)
    except OSError as exc:
        raise KeyStoreError(f"cannot write key store {path}: {exc.strerror}") from None
    try:
        os.link(temp, path)  # atomic, and fails if path exists
    except FileExistsError:
        raise KeyStoreError(
            f"key store {path} already exists; refusing to overwrite it "
            f"(use `schakel keys rotate --path {path}` to add keys)"
        ) from None
    except OSError as exc:
        raise KeyStoreError(f"cannot create key store {path}: {exc.strerror}") from None
    finally:
        temp.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _replace(path: Path, content: bytes) -> None:
    """Replace ``path`` with ``content`` atomically (write a temporary file, rename it)."""
    try:
        temp = _temp_file(path, content)
    except OSError as exc:
        raise KeyStoreError(f"cannot write key store {path}: {exc.strerror}") from None
    try:
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise KeyStoreError(f"cannot update key store {path}: {exc.strerror}") from None
    _sync_directory(path.parent)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the key file's directory while updating the file.

    The directory is locked, not the file, because an update renames a new file into place.
    """
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise KeyStoreError(
            f"cannot open the directory of key store {path}: {exc.strerror}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
