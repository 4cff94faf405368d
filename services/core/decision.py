"""What the policy decided for one signal and one recipient, and what a rejection looks like.

A :class:`Decision` names the covenant, version, rule and article that made it — the thing a
privacy officer needs to account for a disclosure (or a withholding). Exchange ids are
deterministic, so a replay of the same signal yields the same ids and idempotent writes.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Result = Literal["delivered", "withheld"]

EXCHANGE_NAMESPACE = uuid.UUID("6f1c7d1e-3f4b-5a0e-9b8c-5c68616b656c")
"""Namespace of Schakel exchange ids (UUIDv5); never change it, ids must stay reproducible."""

NO_RECIPIENT = "-"
"""Recipient of the single withheld decision for a signal that no rule covers at all."""


_NAMESPACE_SHA1 = hashlib.sha1(EXCHANGE_NAMESPACE.bytes, usedforsecurity=False)
# The RFC 4122 variant bits (10xx) replace the top two bits of byte 8: its first hex digit.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(EXCHANGE_NAMESPACE, name))`` at a fraction of the cost (hot path).

    The namespace is hashed once and the state copied; the version and variant are set on the
    hex text (digit 13 is the version, digit 17 carries the variant) instead of on bytes.
    """
    sha = _NAMESPACE_SHA1.copy()
    sha.update(name.encode())
    h = sha.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def exchange_id(source: str, signal_id: str, recipient: str) -> str:
    """The id of the exchange of one signal with one recipient; stable across replays."""
    return _uuid5(f"{source}\x1f{signal_id}\x1f{recipient}")


def rejection_id(source: str, signal_id: str) -> str:
    """The id of the rejection record of one (source, signal id)."""
    return _uuid5(f"{source}\x1f{signal_id}\x1frejected")


@dataclass(frozen=True, slots=True)
class RuleRef:
    """The covenant rule behind a decision."""

    covenant_id: str
    covenant_version: str
    rule_id: str
    article: str
    purpose: str

    def as_dict(self) -> dict[str, str]:
        return {
            "id": self.covenant_id,
            "version": self.covenant_version,
            "rule": self.rule_id,
            "article": self.article,
            "purpose": self.purpose,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """Delivered (with the transformed payload) or withheld (with the reason)."""

    exchange_id: str
    signal_id: str
    source: str
    signal_type: str
    recipient: str
    result: Result
    decided_at: datetime
    rule: RuleRef | None
    reason: str | None = None
    payload: dict[str, Any] | None = field(default=None, repr=False)
    disclosed: Mapping[str, str] = field(default_factory=dict)
    """Dotted field path -> the share spec applied (keep, pseudonymise, generalise:...)."""
    withheld_fields: tuple[str, ...] = ()
    pseudonyms: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Dotted field path -> pseudonym issued to the recipient."""
    subjects: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Dotted field path -> hub-internal pseudonym of every identifier in the signal."""
    retention_days: int | None = None
    reidentify: bool = False
    envelope: Mapping[str, Any] = field(default_factory=dict)
    """The envelope values the recipient gets, as its rule says (``exchange_id`` keyed, ``type``,
    and ``source`` and ``time`` unless omitted); ``disclosed`` names them ``envelope.<name>``."""

    @property
    def delivered(self) -> bool:
        return self.result == "delivered"

    @property
    def feed_id(self) -> str | None:
        """The exchange id the recipient was given (keyed; not :attr:`exchange_id`)."""
        value = self.envelope.get("exchange_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A signal refused before any policy was applied; it goes to the dead-letter topic."""

    rejection_id: str
    signal_id: str | None
    source: str | None
    code: str
    reason: str
    decided_at: datetime
