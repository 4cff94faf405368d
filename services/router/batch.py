"""The pure heart of the router: a batch of consumed records in, everything to write out.

The worker loop only moves bytes: it hands consumed records to :func:`route_batch` and writes
what comes back (audit records and outbox entries to the store, feed messages and dead letters
to the broker). Testing this function is testing the router's logic.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from services.audit.model import OutboxEntry
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.records import audit_record, feed_key, feed_message, rejection_record
from services.core.schema_registry import SchemaRegistry
from services.router.topics import feed_topic, partner_of

ACTOR = "schakel-router"


@dataclass(frozen=True, slots=True)
class Consumed:
    """One record read from a ``signals.<partner>`` topic."""

    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes
    value: bytes


@dataclass(frozen=True)
class Repeat:
    """A signal id read again within one batch: its content digest and the first's."""

    key: tuple[str, str]
    digest: str | None
    first: str | None
    record: Consumed


@dataclass
class RoutedBatch:
    audit: list[dict[str, object]] = field(default_factory=list)
    outbox: list[OutboxEntry] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    signals: int = 0
    delivered: int = 0
    withheld: int = 0
    origins: dict[tuple[str, str], Consumed] = field(default_factory=dict)
    """(source, signal id) → the record it came in (services/router/resend.py)."""
    signal_of_exchange: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Exchange id of each decision → its (source, signal id)."""
    repeats: list[Repeat] = field(default_factory=list)
    """Signals read again later in the same batch: not decided again (the first stands;
    services/router/resend.py refuses one with other content)."""

    def feed_topic_of(self, entry: OutboxEntry) -> str:
        return feed_topic(entry.recipient)


def route_batch(
    records: Sequence[Consumed], registry: SchemaRegistry, policy: Policy, now: datetime
) -> RoutedBatch:
    """Decide every record; bad input becomes a dead letter and a rejection record."""
    out = RoutedBatch()
    digests: dict[tuple[str, str], str | None] = {}
    for record in records:
        out.signals += 1
        partner = partner_of(record.topic)
        outcome = process(record.value, registry, policy, now, expected_source=partner)
        if outcome.rejection is not None:
            rejection = outcome.rejection
            out.audit.append(rejection_record(rejection, actor=ACTOR))
            out.dead_letters.append(
                DeadLetter(
                    key=(partner or "-").encode(),
                    value=orjson.dumps(
                        {
                            "rejection_id": rejection.rejection_id,
                            "signal_id": rejection.signal_id,
                            "partner": partner,
                            "code": rejection.code,
                            "reason": rejection.reason,
                            "topic": record.topic,
                            "partition": record.partition,
                            "offset": record.offset,
                            "original": base64.b64encode(record.value).decode(),
                            "rejected_at": now.isoformat(),
                        }
                    ),
                )
            )
            continue
        signal = outcome.signal
        if signal is None:  # pragma: no cover - an outcome has a signal or a rejection
            continue
        digest = _leaf(outcome.partner_signature)
        keys = {(d.source, d.signal_id) for d in outcome.decisions}
        if keys and keys <= digests.keys():  # decided earlier in this batch: that stands
            key = min(keys)
            out.repeats.append(Repeat(key, digest, digests[key], record))
            continue
        digests.update(dict.fromkeys(keys, digest))
        for decision in outcome.decisions:
            out.origins[(decision.source, decision.signal_id)] = record
            out.signal_of_exchange[decision.exchange_id] = (decision.source, decision.signal_id)
            out.audit.append(
                audit_record(decision, actor=ACTOR, partner_signature=outcome.partner_signature)
            )
            if not decision.delivered:
                out.withheld += 1
                continue
            out.delivered += 1
            out.outbox.append(
                OutboxEntry(
                    exchange_id=decision.exchange_id,
                    recipient=decision.recipient,
                    key=feed_key(decision).encode(),
                    value=orjson.dumps(feed_message(decision)),
                    created_at=now,
                )
            )
    return out


def _leaf(signature: Mapping[str, object] | None) -> str | None:
    """A signed signal's content digest (the signature's Merkle leaf)."""
    leaf = signature.get("leaf") if signature is not None else None
    return leaf if isinstance(leaf, str) else None
