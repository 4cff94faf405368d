"""The private checkpoint signing key, in a file of its own that only the audit writer gets.

File format (``format_version`` 1)::

    {
      "format": "schakel-signing-key",
      "format_version": 1,
      "key_id": "ed25519-<16 hex>",
      "private_key": "<base64, 32 raw bytes>",
      "created": "2025-03-01T12:00:00+00:00"
    }

Whoever holds this key can sign checkpoints, and so vouch for a rewritten audit log; the key
store (:mod:`services.keys.file_store`), which the web workplace, the gateway and verifiers are
given, holds only its public half. The router and stacking workers (which write the audit log)
and the operator's ``schakel audit purge`` open this file; nothing else does. It lives beside
the key file by default (:func:`~services.keys.signing_key_path`; ``$SCHAKEL_SIGNING_KEY``
elsewhere, e.g. a secret mounted into the writers only).

Rotation (:meth:`SigningKeyFile.rotate`) first lists the new public key in the key store (the
old one retired) and then replaces this file, so a checkpoint signed with either key always
finds its public key listed. Files are owner-only and written atomically
(:mod:`services.keys.secure_file`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final, Protocol

from services.core.errors import KeyStoreError
from services.core.keys import ED25519_KEY_BYTES, PublicSigningKey, SigningKey, signing_key_id
from services.keys import new_signing_key, utc_now
from services.keys.fields import (
    Malformed,
    an_object,
    b64,
    key_id,
    moment,
    raw_bytes,
    time_text,
)
from services.keys.secure_file import encode, make_directory, read_json, replace, write_new

FORMAT: Final = "schakel-signing-key"
FORMAT_VERSION: Final = 1
WHAT: Final = "signing key file"


class PublicKeyRegistry(Protocol):
    """Where the public halves of the signing keys are listed (the key store)."""

    def add_signing_key(self, key: PublicSigningKey, *, retiring: str) -> None: ...


class SigningKeyFile:
    """The checkpoint signing key in its file. Build with :meth:`create` or :meth:`open`."""

    __slots__ = ("_key", "_path")

    def __init__(self, path: Path, key: SigningKey) -> None:
        """Wrap an already loaded key; use :meth:`create` or :meth:`open` instead."""
        self._path = path
        self._key = key

    @classmethod
    def create(cls, path: Path | str, key: SigningKey | None = None) -> SigningKeyFile:
        """Write a new file with ``key`` (default: a fresh one); refuses to overwrite."""
        path = Path(path)
        made = key or new_signing_key(utc_now())
        make_directory(path, WHAT)
        write_new(path, _encode(made), WHAT, "rotate with `schakel keys rotate --signing`")
        return cls(path, made)

    @classmethod
    def open(cls, path: Path | str) -> SigningKeyFile:
        """Load and check an existing file (owner-only, a well-formed key)."""
        path = Path(path)
        return cls(path, _load(path))

    @property
    def path(self) -> Path:
        return self._path

    def signing_key(self) -> SigningKey:
        """The current checkpoint signing key."""
        return self._key

    def reload(self) -> None:
        """Re-read the file, e.g. after another process rotated the key."""
        self._key = _load(self._path)

    def rotate(self, keys: PublicKeyRegistry) -> SigningKey:
        """Replace the key: list the new public key in ``keys`` (the
        :class:`~services.keys.file_store.FileKeyStore`, which retires the old one there),
        then write the new private key here. Returns the new key; :class:`KeyStoreError` if
        another rotation came first (run it again)."""
        current = _load(self._path)
        new = new_signing_key(utc_now())
        # Under the key store's lock, and only if the store still lists ``current`` as the
        # newest key: of two rotations at once, the second one fails instead of losing a key.
        keys.add_signing_key(new.public(), retiring=current.key_id)
        replace(self._path, _encode(new), WHAT)
        self._key = new
        return new

    def __repr__(self) -> str:
        return f"SigningKeyFile(path={str(self._path)!r}, key_id={self._key.key_id!r})"


def _encode(key: SigningKey) -> bytes:
    return encode(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "key_id": key.key_id,
            "private_key": b64(key.private_bytes),
            "created": time_text(key.created),
        }
    )


def decode_signing_key(entry: Any, where: str) -> SigningKey:
    """A signing key ``{key_id, private_key, created}`` whose id must match the key."""
    obj = an_object(entry, where)
    key = SigningKey(
        key_id=key_id(obj, where),
        private_bytes=raw_bytes(obj, "private_key", where, ED25519_KEY_BYTES),
        created=moment(obj, "created", where),
    )
    if key.key_id != signing_key_id(key.public_key_bytes()):
        raise Malformed(f"{where}.key_id does not match {where}.private_key")
    return key


def _load(path: Path) -> SigningKey:
    document = read_json(
        path,
        WHAT,
        "run `schakel keys init` to create it, or set $SCHAKEL_SIGNING_KEY to where it is "
        "(only the router and stacking workers need it)",
    )
    try:
        root = an_object(document, "the document")
        if root.get("format") != FORMAT:
            raise Malformed(f'"format" must be "{FORMAT}"; this is not a Schakel signing key file')
        if root.get("format_version") != FORMAT_VERSION:
            raise Malformed(
                f"format_version is not {FORMAT_VERSION}; use the Schakel release that wrote it"
            )
        return decode_signing_key(root, "file")
    except Malformed as exc:
        raise KeyStoreError(
            f"{WHAT} {path} is malformed: {exc}; restore it from a backup"
        ) from None
    except KeyStoreError as exc:
        raise KeyStoreError(f"{WHAT} {path} is malformed: {exc}") from None
