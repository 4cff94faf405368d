"""A key store in one JSON file, readable only by its owner.

File format (``format_version`` 3)::

    {
      "format": "schakel-keys",
      "format_version": 3,
      "pseudonym_keys": [
        {"version": 1, "secret": "<base64, 32 bytes>",
         "created": "2025-03-01T12:00:00+00:00", "retired": null, "derivation": 2}
      ],
      "signing_keys": [
        {"key_id": "ed25519-<16 hex>", "public_key": "<base64, 32 raw bytes>",
         "created": "...", "retired": null}
      ]
    }

``signing_keys`` are the *public* halves of the checkpoint signing keys, oldest first; the
current one (last) is not retired. The private signing key is not in this file: it lives in
the signing key file (:mod:`services.keys.signing_file`), which only the writer of the audit
log is given, while this file goes to every service that pseudonymises or verifies (the web
workplace among them). A web process therefore has no key to sign a checkpoint with.

``derivation`` is the key's scheme for deriving domain keys (:mod:`services.core.keys`).

Versions 1 and 2 kept the private signing key here (``signing_key``, plus
``retired_signing_keys``); version 1 did not record ``derivation`` either (its keys are on
the legacy scheme 1, which is how their pseudonyms were made). :meth:`FileKeyStore.open`
migrates such a file in place, once: the private key goes to the signing key file (created
beside it, or where ``signing_path`` says) and this file is rewritten as version 3, which a
Schakel too old to know the fields refuses instead of deriving differently. Deployments then
hand the signing key file to the writers only (docs/operations.md).

Files are created and updated atomically with mode 0600, under a directory lock, by
:mod:`services.keys.secure_file`; loading refuses a file that group or others may access.
Error messages name the file and the fix; neither they nor any ``repr`` contain key material.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from services.core.errors import KeyStoreError
from services.core.keys import (
    DERIVATIONS,
    LEGACY_DERIVATION,
    SECRET_BYTES,
    PseudonymKey,
    PublicSigningKey,
    active_key,
    check_pseudonym_keys,
    rotated,
)
from services.keys import default_signing_key_path, new_pseudonym_secret, utc_now
from services.keys.fields import (
    Malformed,
    a_list,
    an_object,
    b64,
    field,
    moment,
    optional_moment,
    public_signing_entry,
    public_signing_key,
    raw_bytes,
    time_text,
)
from services.keys.secure_file import (
    FILE_MODE,
    encode,
    locked,
    make_directory,
    read_json,
    write_new,
)
from services.keys.secure_file import replace as replace_file
from services.keys.signing_file import SigningKeyFile, decode_signing_key

__all__ = ["FILE_MODE", "FORMAT", "FORMAT_VERSION", "FileKeyStore"]

log = logging.getLogger(__name__)

FORMAT: Final = "schakel-keys"
FORMAT_VERSION: Final = 3
MIGRATED_VERSIONS: Final = frozenset({1, 2})  # kept the private signing key here
WHAT: Final = "key store"


@dataclass(frozen=True, slots=True)
class _State:
    """Everything a key file holds."""

    pseudonym_keys: tuple[PseudonymKey, ...]
    signing_keys: tuple[PublicSigningKey, ...]

    def __post_init__(self) -> None:
        check_pseudonym_keys(self.pseudonym_keys)
        if not self.signing_keys:
            raise KeyStoreError("the key store lists no checkpoint signing key")
        *older, current = self.signing_keys
        if current.retired is not None or any(key.retired is None for key in older):
            raise KeyStoreError(
                "exactly the newest checkpoint signing key must be unretired; restore the "
                "file from a backup"
            )


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
    def create(cls, path: Path | str, signing_path: Path | str | None = None) -> FileKeyStore:
        """Write a new store with one pseudonym key, and a new signing key file (default:
        :func:`~services.keys.default_signing_key_path`) whose public key it lists.

        Refuses (:class:`KeyStoreError`) to overwrite either file. Creates the parent
        directories (mode 0700) if needed.
        """
        path = Path(path)
        now = utc_now()
        make_directory(path, WHAT)
        if path.exists():
            _exists(path)
        signing = SigningKeyFile.create(signing_path or default_signing_key_path(path))
        state = _State(
            pseudonym_keys=(PseudonymKey(version=1, secret=new_pseudonym_secret(), created=now),),
            signing_keys=(signing.signing_key().public(),),
        )
        try:
            write_new(path, _encode(state), WHAT, _EXISTS_HINT.format(path=path))
        except KeyStoreError:
            signing.path.unlink(missing_ok=True)
            raise
        return cls(path, state)

    @classmethod
    def open(cls, path: Path | str, signing_path: Path | str | None = None) -> FileKeyStore:
        """Load and check an existing store (ownership-only permissions, well-formed keys).

        A version 1 file is migrated first: its private signing key is moved to
        ``signing_path`` (default: :func:`~services.keys.default_signing_key_path`)."""
        path = Path(path)
        document = read_json(path, WHAT, _CREATE_HINT.format(path=path))
        if isinstance(document, dict) and _old_version(document) is not None:
            with locked(path, WHAT):
                _migrate(path, Path(signing_path or default_signing_key_path(path)))
            document = read_json(path, WHAT, _CREATE_HINT.format(path=path))
        return cls(path, _decode_file(path, document))

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

    def public_signing_keys(self) -> Sequence[PublicSigningKey]:
        """Public halves of every checkpoint signing key, oldest first (current last)."""
        return self._state.signing_keys

    def current_signing_key(self) -> PublicSigningKey:
        """The public half of the current checkpoint signing key."""
        return self._state.signing_keys[-1]

    def retired_signing_keys(self) -> Sequence[PublicSigningKey]:
        """Public halves of earlier signing keys, oldest first."""
        return self._state.signing_keys[:-1]

    # -- operations ----------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the file, e.g. after another process rotated a key."""
        self._set(_load(self._path))

    def rotate_pseudonym_key(self) -> PseudonymKey:
        """Add pseudonym key version n+1 and retire version n; return the new key.

        The retired key stays in the file, so its pseudonyms remain recognisable and, where
        allowed, re-identifiable.
        """
        with locked(self._path, WHAT):
            current = _load(self._path)
            state = replace(
                current,
                pseudonym_keys=rotated(current.pseudonym_keys, new_pseudonym_secret(), utc_now()),
            )
            replace_file(self._path, _encode(state), WHAT)
        self._set(state)
        return self._active

    def add_signing_key(self, key: PublicSigningKey, *, retiring: str) -> None:
        """List ``key`` as the current signing key, retiring the current one, which must be
        ``retiring`` (a rotation of the signing key file,
        :meth:`~services.keys.signing_file.SigningKeyFile.rotate`, calls this)."""
        with locked(self._path, WHAT):
            current = _load(self._path)
            *older, newest = current.signing_keys
            if newest.key_id != retiring:
                raise KeyStoreError(
                    f"key store {self._path} lists {newest.key_id} as the current signing key, "
                    f"not {retiring}: another rotation came first, or the signing key file "
                    "belongs to another key store. Fix: run the rotation again, or pass the "
                    "matching --path / $SCHAKEL_SIGNING_KEY."
                )
            retired = replace(newest, retired=key.created)
            state = replace(current, signing_keys=(*older, retired, replace(key, retired=None)))
            replace_file(self._path, _encode(state), WHAT)
        self._set(state)

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
            f"signing_key={self.current_signing_key().key_id!r} (public))"
        )


_CREATE_HINT = "run `schakel keys init --path {path}` to create it"
_EXISTS_HINT = "use `schakel keys rotate --path {path}` to add keys"


def _exists(path: Path) -> None:
    raise KeyStoreError(
        f"key store {path} already exists; refusing to overwrite it "
        f"({_EXISTS_HINT.format(path=path)})"
    )


# -- encoding ------------------------------------------------------------------------------


def _pseudonym_entries(keys: Sequence[PseudonymKey]) -> list[dict[str, Any]]:
    return [
        {
            "version": key.version,
            "secret": b64(key.secret),
            "created": time_text(key.created),
            "retired": time_text(key.retired),
            "derivation": key.derivation,
        }
        for key in keys
    ]


def _encode(state: _State) -> bytes:
    return encode(
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "pseudonym_keys": _pseudonym_entries(state.pseudonym_keys),
            "signing_keys": [public_signing_entry(key) for key in state.signing_keys],
        }
    )


def _derivation(entry: Mapping[str, Any], where: str, version: int) -> int:
    if version < 2:
        return LEGACY_DERIVATION
    value = field(entry, "derivation", where)
    if isinstance(value, bool) or value not in DERIVATIONS:
        raise Malformed(
            f"{where}.derivation must be one of {', '.join(str(d) for d in sorted(DERIVATIONS))}"
        )
    return int(value)


def _pseudonym_keys(root: Mapping[str, Any], version: int) -> tuple[PseudonymKey, ...]:
    found = []
    for index, item in enumerate(a_list(field(root, "pseudonym_keys", "file"), "pseudonym_keys")):
        where = f"pseudonym_keys[{index}]"
        entry = an_object(item, where)
        number = field(entry, "version", where)
        if isinstance(number, bool) or not isinstance(number, int):
            raise Malformed(f"{where}.version must be an integer")
        found.append(
            PseudonymKey(
                version=number,
                secret=raw_bytes(entry, "secret", where, SECRET_BYTES),
                created=moment(entry, "created", where),
                retired=optional_moment(entry, "retired", where),
                derivation=_derivation(entry, where, version),
            )
        )
    return tuple(found)


def _root(document: Any) -> Mapping[str, Any]:
    root = an_object(document, "the document")
    if root.get("format") != FORMAT:
        raise Malformed(f'"format" must be "{FORMAT}"; this is not a Schakel key file')
    return root


def _decode(document: Any) -> _State:
    root = _root(document)
    version = root.get("format_version")
    if version != FORMAT_VERSION:
        shown = version if isinstance(version, int) else "(missing or not a number)"
        raise Malformed(
            f"format_version {shown} is not supported (this Schakel reads version "
            f"{FORMAT_VERSION}, and migrates versions 1 and 2); use the Schakel release that "
            "wrote it"
        )
    listed = a_list(field(root, "signing_keys", "file"), "signing_keys")
    signing = tuple(
        public_signing_key(item, f"signing_keys[{index}]", retired_required=False)
        for index, item in enumerate(listed)
    )
    return _State(_pseudonym_keys(root, FORMAT_VERSION), signing)


def _decode_file(path: Path, document: Any) -> _State:
    try:
        return _decode(document)
    except Malformed as exc:
        raise KeyStoreError(
            f"key store {path} is malformed: {exc}; restore it from a backup"
        ) from None
    except KeyStoreError as exc:
        raise KeyStoreError(f"key store {path} is malformed: {exc}") from None


def _load(path: Path) -> _State:
    return _decode_file(path, read_json(path, WHAT, _CREATE_HINT.format(path=path)))


# -- migration from versions 1 and 2 -------------------------------------------------------


def _old_version(document: Mapping[str, Any]) -> int | None:
    version = document.get("format_version")
    if isinstance(version, bool) or version not in MIGRATED_VERSIONS:
        return None
    return int(version)


def _migrate(path: Path, signing_path: Path) -> None:
    """Split a version 1 or 2 key file (under its directory lock): the private signing key to
    ``signing_path``, the rest back as version 3. Idempotent: a second process finds the
    file migrated; a signing key file left by an interrupted migration is reused if it
    holds the same key."""
    document = read_json(path, WHAT, _CREATE_HINT.format(path=path))
    version = _old_version(document) if isinstance(document, dict) else None
    if version is None:
        return
    try:
        root = _root(document)
        private = decode_signing_key(field(root, "signing_key", "file"), "signing_key")
        retired = tuple(
            public_signing_key(item, f"retired_signing_keys[{index}]", retired_required=True)
            for index, item in enumerate(
                a_list(root.get("retired_signing_keys", []), "retired_signing_keys")
            )
        )
        state = _State(_pseudonym_keys(root, version), (*retired, private.public()))
    except Malformed as exc:
        raise KeyStoreError(
            f"key store {path} is malformed: {exc}; restore it from a backup"
        ) from None
    if signing_path.exists():
        kept = SigningKeyFile.open(signing_path).signing_key()
        if kept.key_id != private.key_id:
            raise KeyStoreError(
                f"cannot migrate key store {path}: the signing key file {signing_path} holds "
                f"another key ({kept.key_id}). Fix: move that file away, or pass the signing "
                "key file of this key store ($SCHAKEL_SIGNING_KEY)."
            )
    else:
        SigningKeyFile.create(signing_path, private)
    replace_file(path, _encode(state), WHAT)
    log.warning(
        "migrated key store %s to format version %d: the checkpoint signing key moved to %s; "
        "give that file to the audit writers (router, stacking) only",
        path,
        FORMAT_VERSION,
        signing_path,
    )
