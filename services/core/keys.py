"""The hub's key model and the interface of a key store.

Two kinds of keys:

* **Pseudonym keys** are versioned 32-byte secrets, in the key store. The newest non-retired
  version makes new pseudonyms; retired versions stay so that pseudonyms issued under them can
  still be recognised (subject look-up) and, where a covenant allows it, re-identified.
  Rotation therefore never breaks history: it adds version n+1 and retires version n.
* **The signing key** is the hub's Ed25519 key that signs audit checkpoints, so a verifier
  needs only the log and the public key. Only the writer of the audit log holds it
  (:class:`SigningKeySource`, a file of its own); the key store, which every service that
  pseudonymises or verifies is given, holds the public halves only
  (:class:`PublicSigningKey`: the current key's and, after rotations, the earlier ones', so
  older checkpoints remain verifiable).

This module is pure (no I/O and no randomness): stores generate secrets and hand them in.
Key material never appears in a ``repr``, ``str`` or error message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from services.core.errors import KeyStoreError

SECRET_BYTES = 32
"""Length of a pseudonym key secret (256 bits)."""

LEGACY_DERIVATION = 1
"""Domain keys of the hub's internal pseudonym domains are derived with the same label as a
covenant's (``schakel/pseudonym/v1|hub|internal``): the scheme of every key made before
Schakel separated them, kept so that their pseudonyms (subject index, stacking state, audit
records) keep their meaning. See :mod:`services.core.pseudonyms`."""

DERIVATION = 2
"""Internal domains have a label of their own, which no covenant/recipient pair can produce:
the scheme of every key made now (a new store, a rotation)."""

DERIVATIONS = frozenset({LEGACY_DERIVATION, DERIVATION})

ED25519_KEY_BYTES = 32
"""Length of a raw Ed25519 private or public key."""


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise KeyStoreError(f"{name} must be a timezone-aware time (use UTC)")


@dataclass(frozen=True, slots=True)
class PseudonymKey:
    """One version of the pseudonym secret.

    ``retired`` is set when a newer version took over: a retired key makes no new pseudonyms
    but still recognises and re-identifies the ones it made. ``derivation`` is the scheme of
    its domain keys (:data:`DERIVATION` for new keys, :data:`LEGACY_DERIVATION` for keys made
    before the internal domains had labels of their own); it belongs to the key for life, so
    a pseudonym always resolves the way it was made. The secret is left out of
    ``repr``/``str`` so logging a key never leaks it.
    """

    version: int
    secret: bytes = field(repr=False)
    created: datetime
    retired: datetime | None = None
    derivation: int = DERIVATION

    def __post_init__(self) -> None:
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise KeyStoreError("a pseudonym key version must be an integer")
        if self.version < 1:
            raise KeyStoreError(
                f"pseudonym key version {self.version} is invalid: versions start at 1"
            )
        if not isinstance(self.secret, bytes) or len(self.secret) != SECRET_BYTES:
            raise KeyStoreError(
                f"pseudonym key version {self.version} must have a {SECRET_BYTES}-byte secret"
            )
        _require_aware(f"pseudonym key version {self.version} created", self.created)
        _require_aware(f"pseudonym key version {self.version} retired", self.retired)
        if self.derivation not in DERIVATIONS or isinstance(self.derivation, bool):
            raise KeyStoreError(
                f"pseudonym key version {self.version} has an unknown derivation scheme; "
                f"this Schakel knows {sorted(DERIVATIONS)}"
            )

    @property
    def active(self) -> bool:
        """True while the key is not retired (it may make new pseudonyms)."""
        return self.retired is None


def signing_key_id(public_bytes: bytes) -> str:
    """The key id of an Ed25519 public key: derived from the key, so an id can't lie about it."""
    return "ed25519-" + hashlib.sha256(public_bytes).hexdigest()[:16]


def public_key_fingerprint(public_bytes: bytes) -> str:
    """A printable fingerprint of a raw Ed25519 public key, for comparing keys by eye."""
    return "sha256:" + hashlib.sha256(public_bytes).hexdigest()


def _public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


@dataclass(frozen=True, slots=True)
class SigningKey:
    """The hub's Ed25519 key for signing audit checkpoints (private bytes hidden from repr)."""

    key_id: str
    private_bytes: bytes = field(repr=False)
    created: datetime

    def __post_init__(self) -> None:
        if not self.key_id:
            raise KeyStoreError("a signing key needs a key id")
        if (
            not isinstance(self.private_bytes, bytes)
            or len(self.private_bytes) != ED25519_KEY_BYTES
        ):
            raise KeyStoreError(
                f"signing key {self.key_id} must be {ED25519_KEY_BYTES} raw Ed25519 private bytes"
            )
        _require_aware(f"signing key {self.key_id} created", self.created)

    @classmethod
    def from_private_bytes(cls, private_bytes: bytes, created: datetime) -> SigningKey:
        """Build a signing key whose id is derived from its public key."""
        if len(private_bytes) != ED25519_KEY_BYTES:
            raise KeyStoreError(f"a signing key must be {ED25519_KEY_BYTES} raw Ed25519 bytes")
        public = Ed25519PrivateKey.from_private_bytes(private_bytes).public_key()
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(key_id=signing_key_id(raw), private_bytes=private_bytes, created=created)

    def private_key(self) -> Ed25519PrivateKey:
        """The key as a ``cryptography`` object, to sign with."""
        return Ed25519PrivateKey.from_private_bytes(self.private_bytes)

    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature of ``data`` (64 bytes)."""
        return self.private_key().sign(data)

    def public_key_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return (
            self.private_key()
            .public_key()
            .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        )

    def public_key_pem(self) -> str:
        """The public key as PEM (SubjectPublicKeyInfo), the form verifiers are given."""
        return _public_pem(self.private_key().public_key())

    def fingerprint(self) -> str:
        """Fingerprint of the public key (safe to print and publish)."""
        return public_key_fingerprint(self.public_key_bytes())

    def public(self, retired: datetime | None = None) -> PublicSigningKey:
        """The public half of this key, as kept after rotation."""
        return PublicSigningKey(
            key_id=self.key_id,
            public_bytes=self.public_key_bytes(),
            created=self.created,
            retired=retired,
        )


@dataclass(frozen=True, slots=True)
class PublicSigningKey:
    """The public half of a signing key; kept after rotation to verify older checkpoints."""

    key_id: str
    public_bytes: bytes
    created: datetime
    retired: datetime | None = None

    def __post_init__(self) -> None:
        if not self.key_id:
            raise KeyStoreError("a public signing key needs a key id")
        if not isinstance(self.public_bytes, bytes) or len(self.public_bytes) != ED25519_KEY_BYTES:
            raise KeyStoreError(
                f"public signing key {self.key_id} must be {ED25519_KEY_BYTES} raw Ed25519 bytes"
            )
        _require_aware(f"public signing key {self.key_id} created", self.created)
        _require_aware(f"public signing key {self.key_id} retired", self.retired)

    def public_key(self) -> Ed25519PublicKey:
        """The key as a ``cryptography`` object, to verify with."""
        return Ed25519PublicKey.from_public_bytes(self.public_bytes)

    def public_key_pem(self) -> str:
        """The public key as PEM (SubjectPublicKeyInfo)."""
        return _public_pem(self.public_key())

    def fingerprint(self) -> str:
        """Fingerprint of the public key."""
        return public_key_fingerprint(self.public_bytes)


class KeyStore(Protocol):
    """Where the hub's keys come from. Read-only: this is all the pseudonymiser and the
    verifiers of the audit log need. A key store holds only the *public* halves of the
    checkpoint signing keys; the private key is kept apart (:class:`SigningKeySource`), by
    the writer of the audit log alone."""

    def pseudonym_keys(self) -> Sequence[PseudonymKey]:
        """All pseudonym key versions, ascending by version (retired ones included)."""
        ...

    def active_pseudonym_key(self) -> PseudonymKey:
        """The newest non-retired pseudonym key: the one that makes new pseudonyms."""
        ...

    def public_signing_keys(self) -> Sequence[PublicSigningKey]:
        """Public halves of every checkpoint signing key, oldest first (the current one is
        not retired): the keys verifiers trust."""
        ...


class SigningKeySource(Protocol):
    """Where the writer of the audit log gets its checkpoint signing key."""

    def signing_key(self) -> SigningKey:
        """The current checkpoint signing key."""
        ...


class ManagedKeyStore(KeyStore, Protocol):
    """A key store that can also rotate its pseudonym keys (the operator's view of a store)."""

    def rotate_pseudonym_key(self) -> PseudonymKey:
        """Add version n+1, retire version n, and return the new key."""
        ...


def check_pseudonym_keys(keys: Sequence[PseudonymKey]) -> None:
    """Check that a key ring is usable: versions 1..n in order, exactly the newest active.

    Versions must be contiguous so a gap (a lost key) is noticed rather than silently making
    old pseudonyms unrecognisable.
    """
    if not keys:
        raise KeyStoreError("the key store holds no pseudonym key")
    for expected, key in enumerate(keys, start=1):
        if key.version != expected:
            raise KeyStoreError(
                f"pseudonym key versions must run 1..{len(keys)} in order; "
                f"found version {key.version} where version {expected} belongs"
            )
    *older, newest = keys
    if newest.retired is not None:
        raise KeyStoreError(
            f"the newest pseudonym key (version {newest.version}) is retired; "
            "rotate to add an active key"
        )
    for key in older:
        if key.retired is None:
            raise KeyStoreError(
                f"pseudonym key version {key.version} is not retired although a newer "
                "version exists"
            )


def active_key(keys: Sequence[PseudonymKey]) -> PseudonymKey:
    """The newest non-retired key of a key ring."""
    for key in reversed(keys):
        if key.retired is None:
            return key
    raise KeyStoreError("the key store has no active pseudonym key; rotate to add one")


def rotated(keys: Sequence[PseudonymKey], secret: bytes, now: datetime) -> tuple[PseudonymKey, ...]:
    """The key ring after a rotation: every active key retired at ``now``, a new version added
    (with the current derivation scheme; older versions keep theirs)."""
    newest = max((key.version for key in keys), default=0)
    kept = tuple(key if key.retired is not None else replace(key, retired=now) for key in keys)
    return (*kept, PseudonymKey(version=newest + 1, secret=secret, created=now))
