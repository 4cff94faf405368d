"""Retention of audit records: purging an old prefix of the chain without losing verifiability.

Decision records are kept for a configurable period (:data:`RETENTION_ENV`, an ISO 8601
duration such as ``P730D``, the default). A purge deletes the records older than a cut-off —
only a *prefix* of the chain in ``seq`` order, up to the first record that is still young, so
what remains is one unbroken chain — and, in the same transaction, first writes a **purge
commitment**: the ``seq`` and chain hash of the last purged record (the new *anchor* of the
chain), how many records went and the range of their decision times, signed with the hub's
checkpoint key. The commitment is kept in ``audit_purges``; the anchor is also signed as an
ordinary checkpoint and appended to the witness, so a copy outside the database vouches for it.
The purge itself is logged as an audit record (action ``purge``, no identifiers of anyone).

:func:`services.audit.verify.verify` then starts from the newest validly signed anchor instead
of the genesis hash: any change to what remains still breaks the chain or a checkpoint, and a
forged or altered anchor fails its signature.

The signed bytes (:func:`purge_statement`) are ASCII::

    schakel-audit-purge/v1\\n
    seq=<decimal>\\n
    chain_hash=<64 lowercase hex digits>\\n
    records=<decimal>\\n
    first_timestamp=<YYYY-MM-DDTHH:MM:SSZ>\\n
    last_timestamp=<YYYY-MM-DDTHH:MM:SSZ>\\n
    created_at=<YYYY-MM-DDTHH:MM:SSZ>\\n
    key_id=<key id>\\n
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.chain import HASH_BYTES
from services.audit.checkpoint import CheckpointSigner, format_time, parse_time, whole_seconds
from services.audit.errors import AuditStoreError

RETENTION_ENV = "SCHAKEL_AUDIT_RETENTION"
"""Environment variable with the retention period (ISO 8601 duration, e.g. ``P365D``)."""

DEFAULT_RETENTION = "P730D"
"""Retention period when :data:`RETENTION_ENV` is not set: two years."""

PURGE_PREFIX = b"schakel-audit-purge/v1\n"
"""Domain separation: a purge signature can never pass for a checkpoint's, nor vice versa."""

_PERIOD = re.compile(
    r"P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)


def parse_period(text: str, what: str = "the retention period") -> timedelta:
    """The :class:`timedelta` of an ISO 8601 duration in weeks, days, hours, minutes and
    seconds (``P730D``, ``P52W``, ``PT12H``); months and years are refused because their
    length is ambiguous."""
    match = _PERIOD.fullmatch(text.strip().upper())
    parts = {} if match is None else {k: int(v) for k, v in match.groupdict().items() if v}
    period = timedelta(**parts)
    if not parts or period <= timedelta(0):
        raise AuditStoreError(
            f"{what} {text!r} is not a positive ISO 8601 duration. Fix: write it in days, "
            "weeks or hours, e.g. P730D, P52W or PT12H (months and years are not accepted)."
        )
    return period


def retention_period(value: str | None = None) -> timedelta:
    """``value``, else :data:`RETENTION_ENV`, else :data:`DEFAULT_RETENTION`, as a period."""
    if value is not None:
        return parse_period(value)
    configured = os.environ.get(RETENTION_ENV, "").strip()
    if configured:
        return parse_period(configured, f"{RETENTION_ENV}")
    return parse_period(DEFAULT_RETENTION)


@dataclass(frozen=True, slots=True)
class PurgePlan:
    """What a purge before a cut-off would delete: records ``seq`` <= :attr:`up_to_seq`."""

    up_to_seq: int
    records: int
    first_timestamp: datetime
    last_timestamp: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "up_to_seq": self.up_to_seq,
            "records": self.records,
            "first_timestamp": format_time(self.first_timestamp),
            "last_timestamp": format_time(self.last_timestamp),
        }


@dataclass(frozen=True, slots=True)
class PurgeCommitment:
    """The signed statement that records up to :attr:`seq` were purged and that the chain hash
    there was :attr:`chain_hash` (the anchor verification starts from)."""

    seq: int
    chain_hash: bytes
    records: int
    first_timestamp: datetime
    last_timestamp: datetime
    created_at: datetime
    key_id: str
    signature: bytes

    def statement(self) -> bytes:
        """The bytes that :attr:`signature` signs."""
        return purge_statement(
            self.seq,
            self.chain_hash,
            self.records,
            self.first_timestamp,
            self.last_timestamp,
            self.created_at,
            self.key_id,
        )

    def verify(self, public_key: bytes) -> bool:
        """Whether :attr:`signature` is a valid signature of :meth:`statement` by the raw
        Ed25519 ``public_key``."""
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(self.signature, self.statement())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The commitment as a JSON object (hex hash and signature), for bundles."""
        return {
            "seq": self.seq,
            "chain_hash": self.chain_hash.hex(),
            "records": self.records,
            "first_timestamp": format_time(self.first_timestamp),
            "last_timestamp": format_time(self.last_timestamp),
            "created_at": format_time(self.created_at),
            "key_id": self.key_id,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> PurgeCommitment:
        """The commitment of a :meth:`to_json` object; ``where`` names it in errors."""
        try:
            seq, records, key_id = data["seq"], data["records"], data["key_id"]
            chain_hash = bytes.fromhex(data["chain_hash"])
            signature = bytes.fromhex(data["signature"])
            first = parse_time(data["first_timestamp"])
            last = parse_time(data["last_timestamp"])
            created_at = parse_time(data["created_at"])
        except (KeyError, TypeError, ValueError):
            raise AuditStoreError(
                f"{where} is not a purge commitment: it needs seq, chain_hash (hex), records, "
                "first_timestamp, last_timestamp, created_at (YYYY-MM-DDTHH:MM:SSZ), key_id and "
                "signature (hex). Fix: restore it from a good copy; it is never edited by hand."
            ) from None
        if (
            type(seq) is not int
            or seq < 1
            or type(records) is not int
            or records < 1
            or type(key_id) is not str
            or not key_id
            or len(chain_hash) != HASH_BYTES
        ):
            raise AuditStoreError(
                f"{where} has a bad seq, records, key_id or chain hash. Fix: restore it."
            )
        return cls(seq, chain_hash, records, first, last, created_at, key_id, signature)


def purge_statement(
    seq: int,
    chain_hash: bytes,
    records: int,
    first_timestamp: datetime,
    last_timestamp: datetime,
    created_at: datetime,
    key_id: str,
) -> bytes:
    """The canonical purge statement (see the module docstring)."""
    return PURGE_PREFIX + (
        f"seq={seq}\nchain_hash={chain_hash.hex()}\nrecords={records}\n"
        f"first_timestamp={format_time(first_timestamp)}\n"
        f"last_timestamp={format_time(last_timestamp)}\n"
        f"created_at={format_time(created_at)}\nkey_id={key_id}\n"
    ).encode("ascii")


def signed_purge(
    signer: CheckpointSigner, plan: PurgePlan, chain_hash: bytes, created_at: datetime
) -> PurgeCommitment:
    """The commitment for ``plan`` (anchor hash ``chain_hash``) signed by ``signer`` now."""
    first, last = whole_seconds(plan.first_timestamp), whole_seconds(plan.last_timestamp)
    moment = whole_seconds(created_at)
    key_id = signer.key_id
    signature = signer.sign(
        purge_statement(plan.up_to_seq, chain_hash, plan.records, first, last, moment, key_id)
    )
    return PurgeCommitment(
        plan.up_to_seq, chain_hash, plan.records, first, last, moment, key_id, signature
    )


def purge_record(commitment: PurgeCommitment) -> dict[str, Any]:
    """The audit record that logs a purge: counts, sequence numbers and times only, never an
    identifier of a signal, partner or subject."""
    anchor = commitment.chain_hash.hex()
    return {
        "record_id": f"purge-{commitment.seq}-{anchor[:16]}",
        "timestamp": format_time(commitment.created_at),
        "action": "purge",
        "result": "purged",
        "purged": {
            "up_to_seq": commitment.seq,
            "records": commitment.records,
            "first_timestamp": format_time(commitment.first_timestamp),
            "last_timestamp": format_time(commitment.last_timestamp),
            "anchor_hash": anchor,
            "key_id": commitment.key_id,
        },
    }
