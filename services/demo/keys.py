"""TEST KEYS of the simulated partners: anyone can derive them, so they prove nothing.

Every demo partner (and the hub's own ``schakel`` party) signs its signals with an Ed25519
key derived from a fixed, public seed text (:mod:`services.core.demo_keys`), so demo traffic
is signed, deterministic (Ed25519 signatures are) and verifiable against the registrations in
``covenants/demo/keys.yaml``, which only a hub in demo mode reads. Never register these public
keys for a real partner: outside demo mode the hub refuses them. Real partners make their own
keys with ``schakel keys partner NAME``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core.batch_signing import sign_batch
from services.core.demo_keys import (
    TEST_KEY_WARNING,
    demo_key_id,
    demo_private_key,
    demo_public_key,
)
from services.core.signing import sign

__all__ = ["TEST_KEY_WARNING", "DemoSigner", "demo_key_id", "demo_private_key", "demo_public_key"]


class DemoSigner:
    """Signs envelopes with their source partner's TEST key (``demo-<partner>``): one at a
    time when called, or the signals of each source in a batch as one signed batch
    (:meth:`sign_batch`, which :class:`~services.client.SignalClient` uses; ``batch=False``
    signs those one at a time too)."""

    def __init__(self, *, batch: bool = True) -> None:
        self._keys: dict[str, tuple[Ed25519PrivateKey, str]] = {}
        self.batch = batch

    def __call__(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        return sign(envelope, *self._key(str(envelope["source"])))

    def sign_batch(self, envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each source's signals signed together, in their places."""
        if not self.batch:
            return [self(envelope) for envelope in envelopes]
        by_source: dict[str, list[int]] = {}
        for index, envelope in enumerate(envelopes):
            by_source.setdefault(str(envelope["source"]), []).append(index)
        signed: list[dict[str, Any]] = [{} for _ in envelopes]
        for source, indexes in by_source.items():
            batch = sign_batch([envelopes[i] for i in indexes], *self._key(source))
            for index, envelope in zip(indexes, batch, strict=True):
                signed[index] = envelope
        return signed

    def _key(self, partner: str) -> tuple[Ed25519PrivateKey, str]:
        found = self._keys.get(partner)
        if found is None:
            found = self._keys[partner] = (demo_private_key(partner), demo_key_id(partner))
        return found
