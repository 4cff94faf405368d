"""One indexing step: decoded audit-topic messages into the audit store (no Kafka here).

The store does the work that makes the indexer safe to crash at any moment: records whose id
is stored already are dropped before anything is numbered, the new ones are chained onto the
head in the same SQL transaction, feed copies go in with ``ON CONFLICT DO NOTHING``, and a
checkpoint is signed when due. The loop commits its offsets only after this returns.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.audit.model import AuditStore, OutboxEntry
from services.core.audit_log import AuditLogError, AuditLogMessage, decode

log = logging.getLogger("schakel.indexer")


@dataclass(frozen=True)
class Indexed:
    """What one step did: records read, records new to the store, messages refused."""

    records: int
    new: int
    refused: int


def decode_all(values: Sequence[tuple[int, bytes]]) -> tuple[list[AuditLogMessage], int]:
    """Decode ``(offset, value)`` pairs; a message that is not an audit-log message is logged
    by offset (never its content) and counted, not indexed."""
    messages: list[AuditLogMessage] = []
    refused = 0
    for offset, value in values:
        try:
            messages.append(decode(value))
        except AuditLogError as exc:
            refused += 1
            log.error("audit topic offset %d refused: %s", offset, exc)
    return messages, refused


def index(store: AuditStore, messages: Sequence[AuditLogMessage]) -> Indexed:
    """Write ``messages`` to ``store``: records and feed copies in one transaction, then where
    feeds landed. Idempotent: a replay of the same messages adds nothing."""
    records = [record for message in messages for record in message.records]
    entries = [
        OutboxEntry(
            exchange_id=feed.exchange_id,
            recipient=feed.recipient,
            key=feed.key,
            value=feed.value,
            created_at=_moment(message.at),
            partition=feed.partition,
            offset=feed.offset,
        )
        for message in messages
        for feed in message.feeds
    ]
    produced = [entry for message in messages for entry in message.produced]
    new = store.record(records, entries)
    if produced:
        store.mark_produced(produced)
    return Indexed(records=len(records), new=new, refused=0)


def _moment(at: str) -> datetime:
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
