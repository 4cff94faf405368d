"""An in-memory key store: the test double of :class:`~services.keys.file_store.FileKeyStore`
and of the signing key file (:class:`~services.keys.signing_file.SigningKeyFile`) together.

It behaves like the file store (versions, rotation, public signing keys) without touching
disk, and also holds the private signing key, as the writer of the audit log has both. :meth:`MemoryKeyStore.for_tests` gives deterministic keys derived from a public seed,
so tests and demos produce the same pseudonyms every run; those keys are **not secret** and
say so in their key id and ``repr``. Never use them for real data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from services.core.keys import (
    PseudonymKey,
    PublicSigningKey,
    SigningKey,
    active_key,
    check_pseudonym_keys,
    rotated,
)
from services.keys import new_pseudonym_secret, new_signing_key, utc_now

TEST_SEED = b"schakel-test-key-NOT-SECRET"
"""The default seed of :meth:`MemoryKeyStore.for_tests`; public, so its keys protect nothing."""

TEST_KEY_PREFIX = "TEST-NOT-SECRET-"
"""Prefix of the signing key id of test keys, so they stand out wherever the id is shown."""

TEST_KEYS_CREATED = datetime(2025, 1, 1, tzinfo=UTC)
"""Creation time of deterministic test keys."""

_SecretSource = Callable[[int], bytes]
_SigningSource = Callable[[int, datetime], SigningKey]


def _random_signing_key(_: int, created: datetime) -> SigningKey:
    return new_signing_key(created)


class MemoryKeyStore:
    """Keys held in memory, with the same behaviour as the file store.

    ``secret_for(version)`` and ``signing_key_for(n, created)`` make the keys for rotations;
    by default they are random. :meth:`for_tests` makes them deterministic.
    """

    __slots__ = (
        "_active",
        "_is_test",
        "_pseudonym_keys",
        "_retired_signing",
        "_secret_for",
        "_signing",
        "_signing_for",
    )

    def __init__(
        self,
        pseudonym_keys: Sequence[PseudonymKey],
        signing_key: SigningKey,
        retired_signing_keys: Sequence[PublicSigningKey] = (),
        *,
        secret_for: _SecretSource | None = None,
        signing_key_for: _SigningSource | None = None,
        is_test: bool = False,
    ) -> None:
        keys = tuple(pseudonym_keys)
        check_pseudonym_keys(keys)
        self._pseudonym_keys = keys
        self._active = active_key(keys)
        self._signing = signing_key
        self._retired_signing = tuple(retired_signing_keys)
        self._secret_for: _SecretSource = secret_for or (lambda _: new_pseudonym_secret())
        self._signing_for: _SigningSource = signing_key_for or _random_signing_key
        self._is_test = is_test

    @classmethod
    def generate(cls) -> MemoryKeyStore:
        """A store with fresh random keys, like a newly created file store."""
        now = utc_now()
        key = PseudonymKey(version=1, secret=new_pseudonym_secret(), created=now)
        return cls((key,), new_signing_key(now))

    @classmethod
    def for_tests(cls, seed: bytes = TEST_SEED) -> MemoryKeyStore:
        """A deterministic store derived from ``seed``: TEST KEYS, NOT SECRET.

        Every pseudonym key version and signing key (also after rotations) is a hash of the
        seed, so the same seed always gives the same pseudonyms.
        """

        def secret_for(version: int) -> bytes:
            return hashlib.sha256(seed + b"|pseudonym|" + str(version).encode()).digest()

        def signing_key_for(number: int, created: datetime) -> SigningKey:
            private = hashlib.sha256(seed + b"|signing|" + str(number).encode()).digest()
            key = SigningKey.from_private_bytes(private, created)
            return SigningKey(
                key_id=TEST_KEY_PREFIX + key.key_id, private_bytes=private, created=created
            )

        first = PseudonymKey(version=1, secret=secret_for(1), created=TEST_KEYS_CREATED)
        return cls(
            (first,),
            signing_key_for(1, TEST_KEYS_CREATED),
            secret_for=secret_for,
            signing_key_for=signing_key_for,
            is_test=True,
        )

    # -- KeyStore ------------------------------------------------------------------------

    def pseudonym_keys(self) -> Sequence[PseudonymKey]:
        """All pseudonym key versions, ascending."""
        return self._pseudonym_keys

    def active_pseudonym_key(self) -> PseudonymKey:
        """The newest non-retired pseudonym key."""
        return self._active

    def signing_key(self) -> SigningKey:
        """The current checkpoint signing key."""
        return self._signing

    def retired_signing_keys(self) -> Sequence[PublicSigningKey]:
        """Public halves of earlier signing keys, oldest first."""
        return self._retired_signing

    def public_signing_keys(self) -> Sequence[PublicSigningKey]:
        """Public halves of every signing key, oldest first (the current one last)."""
        return (*self._retired_signing, self._signing.public())

    # -- operations ----------------------------------------------------------------------

    def rotate_pseudonym_key(self) -> PseudonymKey:
        """Add pseudonym key version n+1 and retire version n; return the new key."""
        version = self._pseudonym_keys[-1].version + 1
        keys = rotated(self._pseudonym_keys, self._secret_for(version), utc_now())
        self._pseudonym_keys = keys  # the ring first, so readers never miss the active key
        self._active = keys[-1]
        return self._active

    def rotate_signing_key(self) -> SigningKey:
        """Replace the signing key; keep the old public key to verify older checkpoints."""
        now = utc_now()
        self._retired_signing = (*self._retired_signing, self._signing.public(retired=now))
        self._signing = self._signing_for(len(self._retired_signing) + 1, now)
        return self._signing

    def __repr__(self) -> str:
        marker = "TEST KEYS, NOT SECRET, " if self._is_test else ""
        return (
            f"MemoryKeyStore({marker}pseudonym_versions={len(self._pseudonym_keys)}, "
            f"active_version={self._active.version}, signing_key={self._signing.key_id!r})"
        )
