"""TEST keys: the demo partners' signing keys, derived from a public seed, and how to spot one.

Every demo partner signs with an Ed25519 key derived from a fixed, published seed text and
its partner id, so demo traffic is signed and deterministic. Anyone can derive these keys, so
they prove nothing: a hub accepts them only in demo mode (``schakel up --demo``,
``SCHAKEL_DEMO=1``), and everywhere else — router, gateway, ``schakel publish``, replay and
``schakel covenant check`` — a TEST key is refused.

A TEST key is recognised from the key itself: the hub derives the TEST key of every partner
id it knows (every party of the covenant set at hand) and compares, so a copied registration
is caught whatever its key id or comment says.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "DEMO_KEY_PREFIX",
    "TEST_KEY_WARNING",
    "demo_key_id",
    "demo_private_key",
    "demo_public_key",
    "owner_of_test_key",
]

DEMO_KEY_PREFIX = "demo-"
"""Key ids of TEST keys are ``demo-<partner>``: unique per partner, recognisable in reasons."""

TEST_KEY_WARNING = (
    "TEST KEY: derived from a public seed, anyone can sign with it; demo and tests only"
)
_SEED = "schakel demo TEST key, public and never for production: "
_MAX_KEY_ID = 63


def demo_key_id(partner_id: str) -> str:
    """The key id the demo registers for ``partner_id``'s TEST key (``demo-<partner>``)."""
    key_id = DEMO_KEY_PREFIX + partner_id
    if len(key_id) > _MAX_KEY_ID:
        raise ValueError(
            f"partner id {partner_id!r} is too long for a demo key id (at most "
            f"{_MAX_KEY_ID - len(DEMO_KEY_PREFIX)} characters)"
        )
    return key_id


def demo_private_key(partner_id: str) -> Ed25519PrivateKey:
    """The TEST private key of a partner (derived from a public seed: not a secret)."""
    seed = hashlib.sha256((_SEED + partner_id).encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


@lru_cache(maxsize=1024)
def demo_public_key(partner_id: str) -> str:
    """The base64 public key of a partner's TEST key, as a registration would write it."""
    public = demo_private_key(partner_id).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()  # as services.core.signing.public_key_base64


def owner_of_test_key(ed25519: str, partners: Iterable[str]) -> str | None:
    """The partner among ``partners`` whose TEST key ``ed25519`` is, or None for any other key.

    ``ed25519`` is compared as registered (standard base64); the derivation is cached, so
    asking about every party of a covenant set costs a few microseconds once it is warm.
    """
    for partner in partners:
        if demo_public_key(partner) == ed25519:
            return partner
    return None
