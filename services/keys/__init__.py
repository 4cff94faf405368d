"""Key stores: where the hub's pseudonym and checkpoint-signing keys live.

:mod:`services.core.keys` defines the key model and the :class:`~services.core.keys.KeyStore`
interface; this package holds the implementations (a JSON file for running hubs in
:mod:`services.keys.file_store`, an in-memory double for tests in :mod:`services.keys.testing`)
and what they share: where the key file lives by default, and how fresh keys are made.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.config import DEFAULT_STATE_DIR, KEYS_ENV, KEYS_FILE, Paths
from services.core.keys import SECRET_BYTES, SigningKey

KEYS_ENV_VAR = KEYS_ENV
"""Environment variable naming the key file; overrides ``<state dir>/keys.json``."""

DEFAULT_KEYS_PATH = DEFAULT_STATE_DIR / KEYS_FILE
"""The key file when neither :data:`KEYS_ENV_VAR` nor ``SCHAKEL_STATE_DIR`` is set, relative to
the working directory. ``var/`` is git-ignored, so a development key store is never committed."""


def default_keys_path() -> Path:
    """The key file to use: ``$SCHAKEL_KEYS`` if set (and non-empty), else ``keys.json`` in the
    state directory (``$SCHAKEL_STATE_DIR``, default ``./var``) — see :class:`Paths`."""
    return Paths.from_env().key_file


def utc_now() -> datetime:
    """The current time in UTC, whole seconds, as key stores record it."""
    return datetime.now(UTC).replace(microsecond=0)


def new_pseudonym_secret() -> bytes:
    """A fresh pseudonym key secret from the operating system's CSPRNG."""
    return secrets.token_bytes(SECRET_BYTES)


def new_signing_key(created: datetime) -> SigningKey:
    """A fresh Ed25519 checkpoint signing key."""
    private = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return SigningKey.from_private_bytes(private, created)
