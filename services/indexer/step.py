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
from services.audit.rows import AuditRow, audit_row
from services.core.audit_log import AuditLogError, AuditLogMessage, UnknownFormatError, decode

log = logging.getLogger("schakel.indexer")


@dataclass(frozen=True)
class Indexed:
    """What one step did: records read, records new to the store, messages refused."""

    records: int
    new: int
    refused: int


@dataclass(frozen=True)
class Decoded:
    """Decoded audit-topic messages, their records made into store rows, and how many
    messages were refused."""

    messages: list[AuditLogMessage]
    rows: list[AuditRow]
    """Every record of :attr:`messages` as :func:`services.audit.rows.audit_row` made it, in
    order: built once here, to check the records, and handed to the store as they are."""
    refused: int


def decode_all(values: Sequence[tuple[int, bytes]]) -> Decoded:
    """Decode ``(offset, value)`` pairs. A message that is not an audit-log message, or holds
    a record the store cannot take, is refused: logged by offset (never its content) and
    replaced by a refusal record of its own (:func:`refusal_record`), so the loss is in the
    chain, on the exchanges page and in verification's count, and cannot block the records
    after it. A message of another format version raises :class:`UnknownFormatError`: the loop
    stops without committing, as skipping would lose every record a newer router writes."""
    messages: list[AuditLogMessage] = []
    rows: list[AuditRow] = []
    refused = 0
    for offset, value in values:
        try:
            message = decode(value)
            made = [audit_row(record) for record in message.records]  # refused here, alone
        except UnknownFormatError:
            raise
        except (AuditLogError, AuditStoreError) as exc:
            refused += 1
            reason = str(exc).split(". Fix")[0]
            log.error("audit topic offset %d refused: %s", offset, reason)
            refusal = refusal_record(offset, reason)
            messages.append(AuditLogMessage([refusal], [], [], ""))
            rows.append(audit_row(refusal))
            continue
        messages.append(message)
        rows.extend(made)
    return Decoded(messages, rows, refused)


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


def index(store: AuditStore, decoded: Decoded) -> Indexed:
    """Write the decoded messages to ``store``: records and feed copies in one transaction,
    then where feeds landed. Idempotent: a replay of the same messages adds nothing."""
    messages = decoded.messages
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
    new = store.record_rows(decoded.rows, entries)
    if produced:
        store.mark_produced(produced)
    return Indexed(records=len(decoded.rows), new=new, refused=decoded.refused)
