"""Signing a partner's signals for :class:`~services.client.publish.SignalClient`.

:class:`PartnerSigner` signs with the partner's Ed25519 key (``schakel keys partner``): by
default each request's signals as one signed batch — one root signature, and each signal its
inclusion path (:mod:`services.core.batch_signing`), which the hub verifies once per batch —
or, with ``batch=False``, each signal on its own (:func:`services.core.signing.sign`). The hub
accepts both. Any object with ``sign_batch(envelopes) -> envelopes`` signs batches for the
client; a plain ``sign(envelope) -> envelope`` callable signs one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core.batch_signing import sign_batch
from services.core.signing import sign

Envelope = dict[str, Any]
Signer = Callable[[Envelope], Envelope]


@runtime_checkable
class BatchSigner(Protocol):
    """Signs the signals of one request together."""

    def sign_batch(self, envelopes: list[Envelope]) -> list[Envelope]: ...


class PartnerSigner:
    """A partner's key: signs batches (default) or single signals (``batch=False``)."""

    def __init__(self, private_key: Ed25519PrivateKey, key_id: str, *, batch: bool = True) -> None:
        self._key = private_key
        self._key_id = key_id
        self.batch = batch

    def __call__(self, envelope: Envelope) -> Envelope:
        """One signal with its own signature."""
        return sign(envelope, self._key, self._key_id)

    def sign_batch(self, envelopes: list[Envelope]) -> list[Envelope]:
        """The signals of one request: one batch signature, or one signature each."""
        if not self.batch:
            return [self(envelope) for envelope in envelopes]
        return sign_batch(envelopes, self._key, self._key_id)

    def __repr__(self) -> str:
        return f"PartnerSigner(key_id={self._key_id!r}, batch={self.batch})"
