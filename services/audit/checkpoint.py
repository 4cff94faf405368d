"""Signed checkpoints: the hub's signature on the head of the hash chain.

A checkpoint says "the chain up to record ``seq`` has hash ``chain_hash``", signed with the
hub's Ed25519 checkpoint key (:class:`~services.core.keys.SigningKey`). The chain alone shows
that records were changed, but whoever can write the database can also recompute the chain
from the changed record on; a signed checkpoint cannot be recomputed without the private key.

The signed bytes (:func:`statement`) are ASCII::

    schakel-audit-checkpoint/v1\\n
    seq=<decimal>\\n
    chain_hash=<64 lowercase hex digits>\\n
    created_at=<YYYY-MM-DDTHH:MM:SSZ>\\n
    key_id=<key id>\\n

Checkpoints are kept in the ``audit_checkpoints`` table and written to a witness outside the
database (:mod:`services.audit.witness`), since cutting off the newest records and their
checkpoints is only detectable against a copy kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.chain import HASH_BYTES
from services.audit.errors import AuditStoreError
from services.core.keys import SigningKeySource

STATEMENT_PREFIX = b"schakel-audit-checkpoint/v1\n"
"""Domain separation: these signatures can never be taken for signatures of anything else."""

SIGNATURE_BYTES = 64
"""Length of an Ed25519 signature."""

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When the stores write a checkpoint: after ``every_records`` new records (counted by
    ``seq``), or at the first write ``every_seconds`` after the previous checkpoint."""

    every_records: int = 1_000
    every_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.every_records < 1 or self.every_seconds <= 0:
            raise AuditStoreError(
                "a checkpoint policy needs every_records >= 1 and every_seconds > 0. "
                "Fix: pass positive values to CheckpointPolicy."
            )


class CheckpointSigner(Protocol):
    """What signs checkpoints: a :class:`~services.core.keys.SigningKey`, or
    :class:`KeyStoreSigner` to follow key rotations."""

    @property
    def key_id(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


class KeyStoreSigner:
    """Signs with the current signing key of a signing key source (the signing key file, or
    a test double), so a rotated key (after ``reload()``) signs the next checkpoint without
    reopening the audit store."""

    def __init__(self, keys: SigningKeySource) -> None:
        self._keys = keys

    @property
    def key_id(self) -> str:
        return self._keys.signing_key().key_id

    def sign(self, data: bytes) -> bytes:
        return self._keys.signing_key().sign(data)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of the chain head at ``seq``. ``created_at`` is UTC, whole seconds."""

    seq: int
    chain_hash: bytes
    created_at: datetime
    key_id: str
    signature: bytes

    def statement(self) -> bytes:
        """The bytes that :attr:`signature` signs."""
        return statement(self.seq, self.chain_hash, self.created_at, self.key_id)

    def verify(self, public_key: bytes) -> bool:
        """Whether :attr:`signature` is a valid signature of :meth:`statement` by the raw
        Ed25519 ``public_key``."""
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(self.signature, self.statement())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The checkpoint as a JSON object (hex hash, hex signature), for witnesses and
        bundles."""
        return {
            "seq": self.seq,
            "chain_hash": self.chain_hash.hex(),
            "created_at": format_time(self.created_at),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Checkpoint:
        """The checkpoint of a :meth:`to_json` object; ``where`` names it in errors."""
        try:
            seq, key_id = data["seq"], data["key_id"]
            chain_hash = bytes.fromhex(data["chain_hash"])
            signature = bytes.fromhex(data["signature"])
            created_at = parse_time(data["created_at"])
        except (KeyError, TypeError, ValueError):
            raise AuditStoreError(
                f"{where} is not a checkpoint: it needs seq, chain_hash (hex), created_at "
                "(YYYY-MM-DDTHH:MM:SSZ), key_id and signature (hex). Fix: restore it from a "
                "good copy; checkpoints are never edited by hand."
            ) from None
        if type(seq) is not int or seq < 1 or type(key_id) is not str or not key_id:
            raise AuditStoreError(f"{where} has a bad seq or key_id. Fix: restore it.")
        if len(chain_hash) != HASH_BYTES:
            raise AuditStoreError(f"{where} has a chain hash of the wrong length. Fix: restore it.")
        return cls(seq, chain_hash, created_at, key_id, signature)


def statement(seq: int, chain_hash: bytes, created_at: datetime, key_id: str) -> bytes:
    """The canonical checkpoint statement (see the module docstring)."""
    return STATEMENT_PREFIX + (
        f"seq={seq}\nchain_hash={chain_hash.hex()}\ncreated_at={format_time(created_at)}\n"
        f"key_id={key_id}\n"
    ).encode("ascii")


def signed(
    signer: CheckpointSigner, seq: int, chain_hash: bytes, created_at: datetime
) -> Checkpoint:
    """A checkpoint of ``(seq, chain_hash)`` signed by ``signer`` at ``created_at``."""
    moment = whole_seconds(created_at)
    key_id = signer.key_id
    signature = signer.sign(statement(seq, chain_hash, moment, key_id))
    return Checkpoint(seq, chain_hash, moment, key_id, signature)


def whole_seconds(moment: datetime) -> datetime:
    """``moment`` in UTC without microseconds, as checkpoints keep it (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return whole_seconds(moment).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`; ``ValueError`` for anything else."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
