"""Password hashing with scrypt (a memory-hard KDF), a random salt per user and a
constant-time comparison.

Stored form: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``, so the cost can be raised
later while old hashes still verify.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from functools import lru_cache

LOG2_N = 15
R = 8
P = 1
_SALT_BYTES = 16
_HASH_BYTES = 32
_MAX_MEMORY = 128 * 1024 * 1024
MIN_LENGTH = 12
"""Shortest password ``schakel users add`` accepts."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=2**log2_n, r=r, p=p, maxmem=_MAX_MEMORY, dklen=_HASH_BYTES
    )


def hash_password(password: str, *, log2_n: int = LOG2_N) -> str:
    """The stored form of ``password`` with a fresh salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _derive(password, salt, log2_n, R, P)
    return f"scrypt${log2_n}${R}${P}${_b64(salt)}${_b64(digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; ``False`` for a malformed stored value."""
    try:
        scheme, log2_n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _derive(password, base64.b64decode(salt), int(log2_n), int(r), int(p))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


@lru_cache(maxsize=4)
def dummy_hash(log2_n: int = LOG2_N) -> str:
    """A hash to check against when a user does not exist, so that a sign-in takes as long
    whether or not the name is known."""
    return hash_password(secrets.token_urlsafe(16), log2_n=log2_n)
