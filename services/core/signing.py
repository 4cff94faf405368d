"""Signed signals: signing an envelope, and checking a single or a batch signature.

A partner signs every envelope it publishes with its Ed25519 key; the public half is
registered in the covenant's party list (:mod:`services.core.covenant.keyring`). The hub
verifies before anything is decided, so a delivered signal is one its source cannot deny.

**What is signed** is the canonical form of the envelope as sent
(:func:`services.core.canonical.canonical_envelope`: RFC 8785, without the signature
attributes). A **single signature** signs it directly: ``signature`` is
``ed25519:<key-id>:<signature>``, the key id as registered in the covenant and the 64-byte
signature in unpadded base64url (86 characters). A **batch signature** signs a Merkle root
over many signals' canonical forms (:mod:`services.core.batch_signing`): ``signature`` is
``ed25519-merkle:<key-id>:<root signature>`` and ``batch`` the signal's inclusion path.

:func:`verify_envelope` checks either at the cost of at most one Ed25519 verification per
signal (per batch root for a batch, remembered by the keyring's
:class:`~services.core.verified_roots.VerifiedRoots`), and returns what the audit record keeps
to prove the signal to a third party (:func:`services.core.signature_proof.check`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.core import merkle
from services.core.batch_signing import (
    BATCH_ALGORITHM,
    BATCH_SIGNATURE_FORMAT,
    BatchFormatError,
    BatchProof,
    b64,
    canonical,
    parse_batch,
    statement,
)
from services.core.canonical import (
    canonical_envelope,
    canonical_json,  # noqa: F401 - re-exported: the canonical form's old home
    es_number,  # noqa: F401 - re-exported: the canonical form's old home
)
from services.core.covenant import validity
from services.core.covenant.keyring import Keyring, PartnerKeys, RegisteredKey
from services.core.errors import SignalRejected

ALGORITHM = "ed25519"
SIGNATURE_BYTES = 64
SIGNATURE_FORMAT = "ed25519:<key-id>:<base64url signature, 86 characters>"
_SIGNATURE = re.compile(r"^(ed25519|ed25519-merkle):([a-z0-9][a-z0-9-]{0,62}):([A-Za-z0-9_-]{86})$")
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_FIX_FORMAT = "Fix: sign with `schakel publish --sign-with KEYFILE` or the client SDK"

PartnerSignature = dict[str, object]
"""What a verified signature leaves in the audit record (:mod:`services.core.signature_proof`)."""


class SignatureFormatError(ValueError):
    """A ``signature`` attribute that is not ``ed25519:<key-id>:<base64url>`` (or, for a signed
    batch, ``ed25519-merkle:<key-id>:<base64url>``)."""


def sign(
    envelope: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str
) -> dict[str, Any]:
    """A copy of ``envelope`` with its single ``signature`` set (any old signature attributes
    replaced); :func:`services.core.batch_signing.sign_batch` signs many at once."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is a lower-case slug such as liander-20261122")
    signature = private_key.sign(canonical_envelope(envelope))
    unsigned = {k: v for k, v in envelope.items() if k != "batch"}
    return {**unsigned, "signature": format_signature(key_id, signature)}


def format_signature(key_id: str, signature: bytes) -> str:
    return f"{ALGORITHM}:{key_id}:{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def parse_signature(text: str) -> tuple[str, bytes]:
    """``(key id, 64 signature bytes)`` of a single signature, or SignatureFormatError."""
    form, key_id, signature, _ = read_signature(text)
    if form != ALGORITHM:
        raise SignatureFormatError(f"signature must have the form {SIGNATURE_FORMAT}")
    return key_id, signature


def read_signature(text: str) -> tuple[str, str, bytes, str]:
    """``(form, key id, signature bytes, signature text)`` of either kind of signature."""
    match = _SIGNATURE.match(text)
    if match is None:
        raise SignatureFormatError(
            f"signature must have the form {SIGNATURE_FORMAT} (or {BATCH_SIGNATURE_FORMAT} "
            "with a batch attribute)"
        )
    try:
        raw = base64.urlsafe_b64decode(match.group(3) + "==")
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only base64url
        raise SignatureFormatError(f"signature must have the form {SIGNATURE_FORMAT}") from None
    return match.group(1), match.group(2), raw, match.group(3)


def verifies(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def public_key_base64(key: Ed25519PublicKey) -> str:
    """Standard base64 of the 32 raw bytes of ``key``: the form covenants register."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass(frozen=True, slots=True)
class _Single:
    """A single signature: ``signature`` over ``message`` (the canonical envelope)."""

    key_id: str
    signature: bytes
    text: str
    message: bytes

    def holds(self, key: RegisteredKey) -> bool:
        return verifies(key.public_key, self.signature, self.message)

    def failure(self, source: str, signal_id: str | None) -> SignalRejected:
        return _bad_signature(self.key_id, source, signal_id)

    def evidence(self) -> PartnerSignature:
        return {
            "form": ALGORITHM,
            "key_id": self.key_id,
            "signature": self.text,
            "leaf": b64(merkle.leaf_hash(self.message)),
        }


@dataclass(frozen=True, slots=True)
class _Batch:
    """A batch signature: ``signature`` over the root of ``proof``, whose path was checked."""

    key_id: str
    signature: bytes
    text: str
    proof: BatchProof
    leaf: bytes
    keyring: Keyring

    def holds(self, key: RegisteredKey) -> bool:
        signed = statement(self.proof.size, self.proof.root)
        return self.keyring.roots.check(
            key.public_bytes,
            signed,
            self.signature,
            lambda: verifies(key.public_key, self.signature, signed),
        )

    def failure(self, source: str, signal_id: str | None) -> SignalRejected:
        return SignalRejected(
            "bad_batch_root",
            f"the batch root signature does not verify with key {self.key_id!r} of partner "
            f"{source!r}: the root or the batch size was changed after signing, or the root "
            "was signed with another private key. Fix: sign the batch root with the private "
            f"key registered as {self.key_id!r} (docs/covenants.md, Signed batches)",
            signal_id=signal_id,
        )

    def evidence(self) -> PartnerSignature:
        return {
            "form": BATCH_ALGORITHM,
            "key_id": self.key_id,
            "signature": self.text,
            "leaf": b64(self.leaf),
            "index": self.proof.index,
            "size": self.proof.size,
            "root": self.proof.root_text,
            "path": self.proof.path_text,
        }


_Claim = _Single | _Batch


def verify_envelope(
    envelope: Mapping[str, Any], keyring: Keyring, day: date, *, signal_id: str | None = None
) -> PartnerSignature | None:
    """Check the signature of a decoded envelope as sent, or raise :class:`SignalRejected`;
    what the audit record keeps of a good one (None for an unsigned signal that may be).

    ``day`` is the Dutch calendar day the signal is decided for: covenant versions in force and
    key validity windows are taken on that day. Reasons name the partner, the key id and the
    fix; never a signature, a key or anything from ``data``.
    """
    source = str(envelope.get("source"))
    duty = keyring.partner(source, day)
    text = envelope.get("signature")
    if text is None:
        if envelope.get("batch") is not None:
            raise _malformed("a batch attribute without a batch signature", signal_id)
        if duty.required:
            raise SignalRejected(
                "unsigned",
                f"signal is not signed, but partner {source!r} must sign every signal "
                f"({_duty(duty)}). Fix: sign it with the partner's key (schakel publish "
                f"--sign-with KEYFILE, or the client SDK); create and register a key with "
                f"`schakel keys partner {source}`",
                signal_id=signal_id,
            )
        return None
    claim = _claim(envelope, str(text), keyring, signal_id)
    key = duty.keys.get(claim.key_id)
    if key is None:
        _unregistered(keyring, claim, source, day, signal_id)
    if not claim.holds(key):
        # key ids are unique across partners: no other key is tried (one verification)
        raise claim.failure(source, signal_id)
    if key.valid_from is not None and day < key.valid_from:
        raise SignalRejected(
            "key_not_yet_valid",
            f"key {claim.key_id!r} of partner {source!r} is not valid before {key.valid_from} "
            f"({key.covenant}). Fix: sign with the partner's current key until then",
            signal_id=signal_id,
        )
    if key.valid_until is not None and day > key.valid_until:
        raise SignalRejected(
            "key_expired",
            f"key {claim.key_id!r} of partner {source!r} expired on {key.valid_until} "
            f"({key.covenant}). Fix: sign with the partner's current key; register a successor "
            "whose valid_from lies before the old key's valid_until",
            signal_id=signal_id,
        )
    return claim.evidence()


def _claim(
    envelope: Mapping[str, Any], text: str, keyring: Keyring, signal_id: str | None
) -> _Claim:
    """The signature of ``envelope`` read; a batch's path checked (no key needed for that)."""
    try:
        form, key_id, signature, signature_text = read_signature(text)
    except SignatureFormatError as exc:
        raise _malformed(str(exc), signal_id) from None
    batch = envelope.get("batch")
    message = canonical_envelope(envelope)
    if form == ALGORITHM:
        if batch is not None:
            raise _malformed(
                "a single signature (ed25519:) signs no batch: remove the batch attribute, or "
                "sign the batch (ed25519-merkle:)",
                signal_id,
            )
        return _Single(key_id, signature, signature_text, message)
    if not canonical(signature_text):
        raise _malformed("the batch signature is not canonical base64url", signal_id)
    if not isinstance(batch, str):
        raise _malformed(
            "a batch signature (ed25519-merkle:) needs the signal's batch attribute "
            "(<index>:<size>:<root>:<path>)",
            signal_id,
        )
    try:
        proof = parse_batch(batch)
    except BatchFormatError as exc:
        raise _malformed(str(exc), signal_id) from None
    leaf = merkle.leaf_hash(message)
    if not proof.leads_to_root(leaf):
        raise SignalRejected(
            "bad_inclusion_path",
            f"the batch path does not lead from this signal, at index {proof.index} of a "
            f"batch of {proof.size}, to the batch root: the envelope was changed after it was "
            "signed, or the path, index or size belong to another signal or batch. Fix: send "
            "each signal exactly as signed with the batch attribute it was signed with",
            signal_id=signal_id,
        )
    return _Batch(key_id, signature, signature_text, proof, leaf, keyring)


def _malformed(problem: str, signal_id: str | None) -> SignalRejected:
    return SignalRejected("malformed_signature", f"{problem}. {_FIX_FORMAT}", signal_id=signal_id)


def _duty(duty: PartnerKeys) -> str:
    if duty.keys:
        return f"it has registered keys in {', '.join(duty.required_by)}"
    return f"{', '.join(duty.required_by)} requires signatures"


def _bad_signature(key_id: str, source: str, signal_id: str | None) -> SignalRejected:
    return SignalRejected(
        "bad_signature",
        f"signature does not verify with key {key_id!r} of partner {source!r}: the envelope "
        "was changed after it was signed, or signed with another private key. Fix: sign "
        f"exactly the envelope sent (canonical form: docs/covenants.md) with the private "
        f"key registered as {key_id!r}",
        signal_id=signal_id,
    )


def _unregistered(
    keyring: Keyring, claim: _Claim, source: str, day: date, signal_id: str | None
) -> NoReturn:
    """Raise the reason a signature under a key id ``source`` has no key of in force fails.

    At most one key is tried (:meth:`Keyring.holder`): another partner's (``foreign_key``), or
    the source's own key from a covenant that ended (``covenant_ended``).
    """
    key_id = claim.key_id
    holder = keyring.holder(key_id, source, day)
    if holder is not None and holder.partner != source:
        if claim.holds(holder):
            raise SignalRejected(
                "foreign_key",
                f"signed with key {key_id!r} of partner {holder.partner!r}, not with a key of "
                f"the source {source!r}: a partner may sign only its own signals. Fix: the "
                f"source partner signs with its own registered key",
                signal_id=signal_id,
            )
    elif holder is not None:
        if not claim.holds(holder):
            raise claim.failure(source, signal_id)
        cov = keyring.covenant(holder.covenant)
        raise SignalRejected(
            "covenant_ended",
            f"signed with key {key_id!r} of partner {source!r}, registered by covenant "
            f"{cov.key}, which {validity.end_text(cov)}; no covenant in force registers "
            f"this key, so nothing {source!r} sends under it can be delivered. Fix: stop "
            f"sending under {cov.covenant}, or put a new version in force that names "
            f"{source!r} with its key",
            signal_id=signal_id,
        )
    raise SignalRejected(
        "unknown_key",
        f"signed with key {key_id!r}, which no covenant in force registers for partner "
        f"{source!r}. Fix: sign with one of its registered keys, or add this key's public "
        f"half to the party's public_keys (see `schakel keys partner {source}`)",
        signal_id=signal_id,
    )
