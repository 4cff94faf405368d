"""What the audit store keeps and the interface every store implements.

The router writes, per batch and in one transaction, the audit records of its decisions and
an *outbox* entry for every feed message it is about to produce (:meth:`AuditStore.record`).
After the broker acknowledged the messages it notes where they landed
(:meth:`AuditStore.mark_produced`); once a recipient's consumer group committed past them they
count as delivered (:meth:`AuditStore.mark_consumed`). Whatever is not yet consumed can be
produced again after the broker lost its data (:meth:`AuditStore.undelivered`). Replays after a
crash produce the same record and exchange ids, so writing is idempotent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.audit.rows import AuditRow

AUDIT_FILTERS = (
    "action",
    "result",
    "object",
    "origin",
    "recipient",
    "signal_id",
    "covenant_id",
    "rule_id",
)
"""Keyword filters of :meth:`AuditStore.count` (columns of the records; ``action``, ``result``
and ``signal_id`` are not indexed since revision 0008, so counting by them alone scans)."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One feed message for ``feed.<recipient>``, kept until the recipient has consumed it.

    ``partition`` and ``offset`` are set once the broker acknowledged the message;
    ``consumed`` once the recipient's committed offset passed it. ``created_at`` must be
    timezone-aware; stores hand it back in UTC.
    """

    exchange_id: str
    recipient: str
    key: bytes
    value: bytes
    created_at: datetime
    partition: int | None = None
    offset: int | None = None
    consumed: bool = False


class AuditStore(Protocol):
    """The audit log and feed outbox of the hub (SQL in production, memory in tests)."""

    def record(self, audit: Sequence[Mapping[str, Any]], outbox: Sequence[OutboxEntry]) -> int:
        """Store audit records and outbox entries in one transaction; return how many records
        were new. Records and entries whose id is already stored are skipped silently."""
        ...

    def record_rows(self, rows: Sequence[AuditRow], outbox: Sequence[OutboxEntry]) -> int:
        """:meth:`record` of records already made into rows (:func:`services.audit.rows.
        audit_row`), for a caller that built them to check the records first (the indexer)."""
        ...

    def mark_produced(self, produced: Sequence[tuple[str, int, int]]) -> None:
        """Note ``(exchange_id, partition, offset)`` of produced entries not yet consumed."""
        ...

    def mark_consumed(self, recipient: str, partition: int, upto_offset: int) -> int:
        """Mark the recipient's produced entries in ``partition`` with an offset below
        ``upto_offset`` (a Kafka committed offset: the next one to read) as consumed; return
        how many changed."""
        ...

    def undelivered(self, recipient: str | None = None, limit: int = 10_000) -> list[OutboxEntry]:
        """Entries not yet consumed (of one recipient, or all), oldest first."""
        ...

    def unconsumed_outside(
        self, recipient: str, ends: Mapping[int, int], limit: int = 10_000
    ) -> list[OutboxEntry]:
        """Entries of ``recipient`` not yet consumed that the broker's feed, whose partitions
        end at ``ends`` (partition → offset one past the last record), cannot hold: never
        marked produced, in a partition it lacks, or at or past the partition's end. Oldest
        first. After a broker lost data these are the messages to re-deliver."""
        ...

    def stored_records(self, record_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """The stored records among ``record_ids``, by id (for a re-sent signal: what was
        decided the first time)."""
        ...

    def unproduced(self, exchange_ids: Collection[str]) -> dict[str, OutboxEntry]:
        """The stored outbox entries among ``exchange_ids`` the broker never acknowledged
        (neither marked produced nor consumed), by exchange id: what a re-read or re-sent
        signal produces again, as it was decided the first time."""
        ...

    def purge_consumed(self, before: datetime) -> int:
        """Delete consumed entries created before ``before``; return how many."""
        ...

    def count(self, **filters: str) -> int:
        """The number of audit records matching every filter (see :data:`AUDIT_FILTERS`)."""
        ...

    def get(self, record_id: str) -> dict[str, Any] | None:
        """The stored record as written, or ``None``."""
        ...

    def records(self, *, after_seq: int = 0, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        """Records with a sequence number above ``after_seq`` in insertion order, with that
        number. Sequence numbers only increase (they may skip values)."""
        ...

    def records_for_subject(
        self, pseudonym: str, *, after_seq: int = 0, limit: int = 1000
    ) -> list[tuple[int, dict[str, Any]]]:
        """Like :meth:`records`, restricted to records about one subject (hub-internal
        pseudonym), for access requests under AVG article 15."""
        ...

    def close(self) -> None:
        """Release the store's resources; further calls raise. Closing twice is harmless."""
        ...
