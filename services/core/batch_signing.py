"""Signed batches: one Ed25519 signature over a Merkle root of many signals.

Verifying an Ed25519 signature costs the hub about 65 µs a signal. A partner may instead sign
a batch: it builds the RFC 9162 Merkle tree (:mod:`services.core.merkle`) whose leaves are its
signals' canonical forms (:func:`services.core.canonical.canonical_envelope`: the envelope
without ``signature`` and ``batch``), signs the root once, and gives each signal the root's
signature and its own inclusion path. The hub verifies each root signature once
(:class:`services.core.verified_roots.VerifiedRoots`) and each signal's path with a few
SHA-256, so every signal stays provable on its own: the root signature, the path and the
leaf hash (kept in its audit records) prove it to anyone holding the partner's public key.

**The attributes** (both strings, as CloudEvents extension attributes must be):

* ``signature``: ``ed25519-merkle:<key-id>:<root signature>`` — the key id as registered and
  the 64-byte Ed25519 signature of the :func:`statement` in unpadded base64url (86 chars);
* ``batch``: ``<index>:<size>:<root>:<path>`` — the leaf's position (0-based) and the number
  of leaves, decimal without leading zeros; the 32-byte root in unpadded base64url (43 chars);
  the path's sibling hashes, leaf upwards, concatenated and in unpadded base64url (empty for a
  batch of one). A batch holds at most :data:`MAX_BATCH` signals. Base64url is read
  strictly (RFC 4648 section 3.5: the unused bits of the last character are zero), so a proof
  has one spelling.

**The statement** a root signature signs is ``"schakel-signal-batch/v1" || 0x00 ||
u64be(size) || root``: the prefix keeps it from being any envelope's canonical form (which
starts with ``{``) or any other signature the hub knows, and the size binds the tree's shape.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core import merkle
from services.core.canonical import SIGNATURE_ATTRIBUTES, canonical_envelope

BATCH_ALGORITHM = "ed25519-merkle"
MAX_BATCH = 1 << 16
"""Signals one root may cover: a path is then at most 16 hashes (under 800 characters)."""
STATEMENT_PREFIX = b"schakel-signal-batch/v1\x00"
BATCH_FORMAT = "<index>:<size>:<root, 43 base64url>:<path, base64url of 32-byte hashes>"
BATCH_SIGNATURE_FORMAT = "ed25519-merkle:<key-id>:<base64url root signature, 86 characters>"
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_BATCH = re.compile(
    r"^(0|[1-9][0-9]{0,5}):([1-9][0-9]{0,5}):([A-Za-z0-9_-]{43}):([A-Za-z0-9_-]{0,683})$"
)
"""683 characters: 16 hashes of 32 bytes in unpadded base64url."""


class BatchFormatError(ValueError):
    """A ``batch`` attribute that is not ``<index>:<size>:<root>:<path>``."""


@dataclass(frozen=True, slots=True)
class BatchProof:
    """A signal's place in a signed batch, as its ``batch`` attribute gives it."""

    index: int
    size: int
    root: bytes
    path: tuple[bytes, ...]
    root_text: str
    """The root as sent (base64url), for the audit record."""
    path_text: str
    """The path as sent (base64url), for the audit record."""

    def leads_to_root(self, leaf: bytes) -> bool:
        """Whether the path leads from ``leaf`` at this index to this root (RFC 9162)."""
        return merkle.root_from_path(self.index, self.size, leaf, self.path) == self.root


def statement(size: int, root: bytes) -> bytes:
    """The bytes a root signature signs."""
    return STATEMENT_PREFIX + size.to_bytes(8, "big") + root


def sign_batch(
    envelopes: Sequence[Mapping[str, Any]], private_key: Ed25519PrivateKey, key_id: str
) -> list[dict[str, Any]]:
    """Copies of ``envelopes`` signed as one batch (any old signature attributes replaced):
    one Ed25519 signature for all, each with its inclusion path."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is a lower-case slug such as liander-20261122")
    if not 1 <= len(envelopes) <= MAX_BATCH:
        raise ValueError(f"a signed batch holds 1 to {MAX_BATCH} signals, not {len(envelopes)}")
    leaves = [merkle.leaf_hash(canonical_envelope(envelope)) for envelope in envelopes]
    root, paths = merkle.tree(leaves)
    size = len(envelopes)
    signature = f"{BATCH_ALGORITHM}:{key_id}:{b64(private_key.sign(statement(size, root)))}"
    root_text = b64(root)
    return [
        {
            **{k: v for k, v in envelope.items() if k not in SIGNATURE_ATTRIBUTES},
            "signature": signature,
            "batch": f"{index}:{size}:{root_text}:{b64(b''.join(path))}",
        }
        for index, (envelope, path) in enumerate(zip(envelopes, paths, strict=True))
    ]


def parse_batch(text: str) -> BatchProof:
    """The proof in a ``batch`` attribute, or :class:`BatchFormatError` saying what is wrong."""
    match = _BATCH.match(text)
    if match is None:
        raise BatchFormatError(f"batch must have the form {BATCH_FORMAT}")
    index, size = int(match.group(1)), int(match.group(2))
    root_text, path_text = match.group(3), match.group(4)
    if size > MAX_BATCH:
        raise BatchFormatError(f"a signed batch holds at most {MAX_BATCH} signals")
    if index >= size:
        raise BatchFormatError("the batch index must be below the batch size")
    path = canonical_unb64(path_text)
    if path is None or len(path) % merkle.HASH_BYTES:
        raise BatchFormatError("the batch path must be whole 32-byte hashes in base64url")
    root = canonical_unb64(root_text)
    if root is None:
        raise BatchFormatError("the batch root must be 32 bytes in base64url")
    hashes = tuple(path[i : i + merkle.HASH_BYTES] for i in range(0, len(path), merkle.HASH_BYTES))
    return BatchProof(index, size, root, hashes, root_text, path_text)


def b64(raw: bytes) -> str:
    """Unpadded base64url."""
    return binascii.b2a_base64(raw, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def canonical_unb64(text: str) -> bytes | None:
    """:func:`unb64`, but None also for a text that is not :func:`canonical`."""
    return unb64(text) if canonical(text) else None


def canonical(text: str) -> bool:
    """Whether base64url ``text`` is the one encoding of its bytes (RFC 4648 section 3.5: the
    unused low bits of the last character are zero), so a proof has one spelling only."""
    rest = len(text) % 4
    return not (rest > 1 and _VALUE.get(text[-1], 1) & (0xF if rest == 2 else 0x3))


def unb64(text: str) -> bytes | None:
    """The bytes of unpadded base64url ``text`` (None when its length cannot be base64).
    Callers match the alphabet first (the decoder would skip other characters)."""
    if len(text) % 4 == 1:
        return None
    try:
        padded = text.encode() + b"=" * (-len(text) % 4)
        return binascii.a2b_base64(padded.translate(_TO_STANDARD))  # bytes.translate: fast
    except binascii.Error:  # pragma: no cover - the patterns admit only base64url
        return None


_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_VALUE = {c: n for n, c in enumerate(_ALPHABET)}
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
