"""Decisions on the audit log that the audit index may not hold yet (pure: no Kafka here).

On the log-first paths the router's audit records become durable on the ``audit`` topic and
reach SQL only when the audit indexer has read them (its lag, normally well under a second).
A signal read again within that lag — the batch of a router that crashed between the audit
acknowledgement and the feed send (Tansu), or a partner's re-send — must be screened against
what the *log* holds, not only the index, or it is decided a second time: under a covenant
reloaded in between, differently, and the indexer keeps the first record while the feed gets
the second decision's message.

:class:`AuditTail` holds, by record id, the first record the log holds for each decision
(the indexer keeps the first too) and the feed copy logged with it until the broker
acknowledged that feed message (a ``produced`` message, or a copy that names its offset). It
is filled from the topic (:mod:`services.router.tail_reader`: from the indexer group's
committed offset at start-up, then every new message) and with the router's own batches once
written; entries below the indexer's committed offset are in SQL and are dropped.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.audit.model import OutboxEntry
from services.core.audit_log import AuditLogMessage

log = logging.getLogger("schakel.router")

MAX_ENTRIES = 500_000
"""Decisions held at most (a few hundred bytes each); beyond it the oldest go, with a warning:
the indexer is that far behind. Until the indexer has committed past what went, the tail is
not :attr:`AuditTail.complete` and the router decides nothing (a re-send of a forgotten
decision would otherwise be decided again: :meth:`TailReader.until_complete`)."""


@dataclass(frozen=True, slots=True)
class Logged:
    """A decision the audit log or index holds: its record (from the tail: only its id, result
    and content digest), and its feed message as logged when the broker never acknowledged it
    (to produce again as it was decided)."""

    record: Mapping[str, Any]
    copy: OutboxEntry | None = None


class AuditTail:
    """First-logged decisions by record id, for the span the indexer has not committed."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self._records: dict[str, Mapping[str, Any]] = {}
        self._copies: dict[str, OutboxEntry] = {}
        self._produced: set[str] = set()
        self._segments: deque[tuple[int, list[str]]] = deque()
        self._max = max_entries
        self._blind_upto = -1
        """The highest audit offset whose decisions went for the bound, not indexed yet."""
        self.own_offsets: set[int] = set()
        """Audit-topic offsets this router wrote (and added itself): not decoded again."""

    @property
    def max_entries(self) -> int:
        return self._max

    def __len__(self) -> int:
        return len(self._records)

    @property
    def complete(self) -> bool:
        """Whether the tail and the index together hold every logged decision: False from
        the moment the bound made the tail forget decisions the indexer had not committed
        past, until it has."""
        return self._blind_upto < 0

    def lookup(self, record_ids: Collection[str]) -> dict[str, Logged]:
        """The logged decisions among ``record_ids``."""
        found: dict[str, Logged] = {}
        for record_id in record_ids:
            record = self._records.get(record_id)
            if record is None:
                continue
            copy = None if record_id in self._produced else self._copies.get(record_id)
            found[record_id] = Logged(record, copy)
        return found

    def add(self, offset: int, message: AuditLogMessage) -> None:
        """One message read from the topic at ``offset``."""
        ids = []
        for record in message.records:
            record_id = str(record["record_id"])
            if record_id not in self._records:  # the first record stands, as in the index
                self._records[record_id] = _kept(record)
                ids.append(record_id)
        created = message.written_at(datetime.now(UTC))
        for feed in message.feeds:
            if feed.exchange_id not in self._copies:
                self._copies[feed.exchange_id] = OutboxEntry(
                    feed.exchange_id, feed.recipient, feed.key, feed.value, created
                )
            if feed.offset is not None:
                self._produced.add(feed.exchange_id)
        self._produced.update(exchange_id for exchange_id, _, _ in message.produced)
        self._remember(offset, ids)

    def add_own(self, offset: int, records: Iterable[Mapping[str, Any]]) -> None:
        """A batch this router wrote, whose audit messages end at ``offset`` and whose feed
        messages the broker acknowledged (nothing to produce again)."""
        ids = []
        for record in records:
            record_id = str(record["record_id"])
            if record_id not in self._records:
                self._records[record_id] = _kept(record)
                ids.append(record_id)
            self._produced.add(record_id)
        self._remember(offset, ids)

    def evict_below(self, offset: int) -> int:
        """Forget decisions logged below ``offset`` (the indexer committed past them: the
        index has them); return how many."""
        gone = 0
        if offset > self._blind_upto:
            self._blind_upto = -1  # what the bound forgot is in the index now
        while self._segments and self._segments[0][0] < offset:
            _, ids = self._segments.popleft()
            gone += self._forget(ids)
        self.own_offsets = {o for o in self.own_offsets if o >= offset}
        # copies and acknowledgements that came apart from their records (or after them)
        self._copies = {i: c for i, c in self._copies.items() if i in self._records}
        self._produced &= self._records.keys()
        return gone

    def _remember(self, offset: int, ids: list[str]) -> None:
        if ids:
            self._segments.append((offset, ids))
        while len(self._records) > self._max and self._segments:
            at, oldest = self._segments.popleft()
            self._blind_upto = max(self._blind_upto, at)
            log.warning(
                "%d logged decisions forgotten before the audit indexer indexed them: the "
                "indexer is more than %d decisions behind. Fix: check the audit indexer",
                self._forget(oldest),
                self._max,
            )

    def _forget(self, ids: list[str]) -> int:
        for record_id in ids:
            self._records.pop(record_id, None)
            self._copies.pop(record_id, None)
            self._produced.discard(record_id)
        return len(ids)


def _kept(record: Mapping[str, Any]) -> dict[str, Any]:
    """What screening needs of a record (its id, result and content digest), not the whole."""
    signature = record.get("partner_signature")
    leaf = signature.get("leaf") if isinstance(signature, Mapping) else None
    return {
        "record_id": record["record_id"],
        "result": record.get("result"),
        "partner_signature": {"leaf": leaf} if leaf is not None else None,
    }
