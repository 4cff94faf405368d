"""TEST KEYS of the simulated partners: anyone can derive them, so they prove nothing.

Every demo partner (and the hub's own ``schakel`` party) signs its signals with an Ed25519
key derived from a fixed, public seed text, so demo traffic is signed, deterministic (Ed25519
signatures are) and verifiable against the public keys registered in ``covenants/``. The
private halves are not secret: never register these public keys for a real partner. Real
partners make their own keys with ``schakel keys partner NAME``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core.signing import public_key_base64, sign

__all__ = ["TEST_KEY_WARNING", "DemoSigner", "demo_key_id", "demo_private_key", "demo_public_key"]

TEST_KEY_WARNING = (
    "TEST KEY: derived from a public seed, anyone can sign with it; demo and tests only"
)
_SEED = "schakel demo TEST key, public and never for production: "


def demo_key_id(partner_id: str) -> str:
    """The id a demo partner's test key is registered under: ``demo-<partner>``.

    Key ids are unique across partners (``schakel covenant check`` refuses a repeat), so a
    signature names exactly one key to check.
    """
    return f"demo-{partner_id}"


def demo_private_key(partner_id: str) -> Ed25519PrivateKey:
    """The test private key of a demo partner (derived from a public seed: not a secret)."""
    seed = hashlib.sha256((_SEED + partner_id).encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def demo_public_key(partner_id: str) -> str:
    """The base64 public key a covenant registers for a demo partner's test key."""
    return public_key_base64(demo_private_key(partner_id).public_key())


class DemoSigner:
    """Signs envelopes with their source partner's test key (keys made once per partner)."""

    def __init__(self) -> None:
        self._keys: dict[str, Ed25519PrivateKey] = {}

    def __call__(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        partner = str(envelope["source"])
        key = self._keys.get(partner)
        if key is None:
            key = self._keys[partner] = demo_private_key(partner)
        return sign(envelope, key, demo_key_id(partner))
