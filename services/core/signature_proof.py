"""Proving one signal to a third party from its audit record and the partner's public key.

Every audit record of a signed signal keeps ``partner_signature``: what the hub verified
(:func:`services.core.signing.verify_envelope`), never the signal's content:

``form``, ``key_id``, ``signature``
    ``ed25519`` (a single signature) or ``ed25519-merkle`` (a signed batch), the key id as
    registered, and the signature in unpadded base64url as the partner sent it.
``leaf``
    ``SHA-256(0x00 || canonical envelope)`` in base64url: the signal's leaf hash
    (:mod:`services.core.merkle`), a commitment to exactly what was signed.
``index``, ``size``, ``root``, ``path`` (batch only)
    the signal's place in the batch, the batch root and the inclusion path, as sent.

For a signed batch the record alone proves, with the partner's public key, that the partner
signed a batch in which this leaf stands at ``index``: the root signature verifies and the path
leads from the leaf to the root. Given the envelope too (from the partner, or a recipient's
copy), :func:`check` also proves it is that leaf. A single signature signs the canonical
envelope itself, so it is proven with the envelope. ``schakel audit prove`` runs this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.core import merkle
from services.core.batch_signing import (
    BATCH_ALGORITHM,
    BatchFormatError,
    parse_batch,
    statement,
    unb64,
)
from services.core.canonical import canonical_envelope
from services.core.signing import ALGORITHM, SignatureFormatError, read_signature, verifies


@dataclass(frozen=True, slots=True)
class Proven:
    """The answer: whether the record proves the signal, and in words what it proves or not."""

    ok: bool
    message: str
    content: bool = False
    """Whether the signal's content (the envelope given) was proven too."""


def check(
    proof: Mapping[str, Any] | None,
    public_key: Ed25519PublicKey,
    *,
    envelope: Mapping[str, Any] | None = None,
) -> Proven:
    """Check a record's ``partner_signature`` against the partner's ``public_key`` (and, when
    given, the envelope as sent). Never raises on bad input: a finding says what is wrong."""
    if not isinstance(proof, Mapping):
        return Proven(False, "the record carries no partner signature (the signal was unsigned)")
    text = f"{proof.get('form')}:{proof.get('key_id')}:{proof.get('signature')}"
    try:
        form, key_id, signature, _ = read_signature(text)
    except SignatureFormatError:
        return Proven(False, "the record's partner signature is malformed")
    leaf = _leaf(proof.get("leaf"))
    if leaf is None:
        return Proven(False, "the record's leaf hash is malformed")
    if envelope is not None and merkle.leaf_hash(canonical_envelope(envelope)) != leaf:
        return Proven(False, "the envelope given is not the signal of this record (leaf differs)")
    if form == ALGORITHM:
        return _single(public_key, key_id, signature, envelope)
    return _batch(proof, public_key, key_id, signature, leaf, envelope is not None)


def _single(
    public_key: Ed25519PublicKey,
    key_id: str,
    signature: bytes,
    envelope: Mapping[str, Any] | None,
) -> Proven:
    if envelope is None:
        return Proven(
            False,
            f"a single signature of key {key_id!r} signs the envelope itself: give the "
            "envelope as sent to prove it",
        )
    if not verifies(public_key, signature, canonical_envelope(envelope)):
        return Proven(False, f"the signature does not verify with the key given ({key_id!r})")
    return Proven(True, f"signed by key {key_id!r}: the envelope given", content=True)


def _batch(
    proof: Mapping[str, Any],
    public_key: Ed25519PublicKey,
    key_id: str,
    signature: bytes,
    leaf: bytes,
    content: bool,
) -> Proven:
    try:
        batch = parse_batch(
            f"{proof.get('index')}:{proof.get('size')}:{proof.get('root')}:{proof.get('path')}"
        )
    except BatchFormatError as exc:
        return Proven(False, f"the record's batch proof is malformed: {exc}")
    if not batch.leads_to_root(leaf):
        return Proven(False, "the inclusion path does not lead from the leaf to the batch root")
    if not verifies(public_key, signature, statement(batch.size, batch.root)):
        return Proven(
            False, f"the batch root signature does not verify with the key given ({key_id!r})"
        )
    what = "the envelope given" if content else "the leaf of this record"
    return Proven(
        True,
        f"signed by key {key_id!r} ({BATCH_ALGORITHM}): {what}, at index {batch.index} of a "
        f"batch of {batch.size}",
        content=content,
    )


def _leaf(value: object) -> bytes | None:
    if not isinstance(value, str) or len(value) != 43:
        return None
    raw = unb64(value)
    return raw if raw is not None and len(raw) == merkle.HASH_BYTES else None
