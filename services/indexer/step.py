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

from services.audit.errors import AuditStoreError
from services.audit.model import AuditStore, OutboxEntry
from services.audit.rows import audit_row
from services.core.audit_log import AuditLogError, AuditLogMessage, UnknownFormatError, decode

log = logging.getLogger("schakel.indexer")


@dataclass(frozen=True)
class Indexed:
    """What one step did: records read, records new to the store, messages refused."""

    records: int
    new: int
    refused: int


def decode_all(values: Sequence[tuple[int, bytes]]) -> tuple[list[AuditLogMessage], int]:
    """Decode ``(offset, value)`` pairs. A message that is not an audit-log message, or holds
    a record the store cannot take, is refused: logged by offset (never its content) and
    replaced by a refusal record of its own (:func:`refusal_record`), so the loss is in the
    chain, on the exchanges page and in verification's count, and cannot block the records
    after it. A message of another format version raises :class:`UnknownFormatError`: the loop
    stops without committing, as skipping would lose every record a newer router writes."""
    messages: list[AuditLogMessage] = []
    refused = 0
    for offset, value in values:
        try:
            message = decode(value)
            for record in message.records:
                audit_row(record)  # what the store would refuse, refused here, alone
        except UnknownFormatError:
            raise
        except (AuditLogError, AuditStoreError) as exc:
            refused += 1
            reason = str(exc).split(". Fix")[0]
            log.error("audit topic offset %d refused: %s", offset, reason)
            messages.append(AuditLogMessage([refusal_record(offset, reason)], [], [], ""))
            continue
        messages.append(message)
    return messages, refused


def refusal_record(offset: int, reason: str) -> dict[str, object]:
    """The audit record of an audit-topic message the indexer could not index (deterministic:
    a replay of the same offset adds nothing)."""
    return {
        "record_id": f"audit-topic-{offset}-refused",
        "action": "index",
        "result": "refused",
        "object": "audit-topic",
        "signal_id": None,
        "origin": None,
        "recipient": None,
        "actor": "audit-indexer",
        "timestamp": datetime.now(UTC).isoformat(),
        "covenant": None,
        "reason": f"audit topic offset {offset} could not be indexed: {reason}",
        "subjects": {},
    }


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
            created_at=message.written_at(datetime.now(UTC)),
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
