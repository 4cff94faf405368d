"""Publish one month of coverage to a campaign team: audit first, then the feed.

Like the router: the audit record and the outbox entry are written in one transaction, then
the message is produced to ``feed.<recipient>`` and its offset noted in the outbox. A failed
send leaves the entry undelivered in the outbox (and the disclosure audited); publishing the
same month again is the same exchange (same id), so it is produced again, not audited twice.
Only a month that is over is published: one in progress grows day by day, and two releases of
it would differ by the signals of the days between.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson

from services.audit.model import AuditStore, OutboxEntry
from services.core.covenant.model import Covenant
from services.core.coverage.errors import CoverageError
from services.core.coverage.feed import aggregate_release, grounds
from services.core.coverage.release import DEFAULT_THRESHOLD, in_progress, release
from services.coverage.store import CoverageStore
from services.router.topics import feed_topic


class ReleaseRefused(CoverageError):  # noqa: N818 - reads as a sentence in messages
    """No covenant rule in force allows the release (deny by default)."""


class FeedProducer(Protocol):
    def send(self, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
        """Produce one message and wait for the broker; return (partition, offset)."""
        ...


@dataclass(frozen=True, slots=True)
class Published:
    exchange_id: str
    new: bool
    """False when this exact release had been audited before (it was produced again)."""
    municipalities: int
    suppressed_cells: int
    partition: int
    offset: int


def publish_month(
    *,
    month: str,
    recipient: str,
    covenants: Iterable[Covenant],
    municipalities: Sequence[tuple[str, str]],
    store: CoverageStore,
    audit: AuditStore,
    producer: FeedProducer,
    now: datetime,
    threshold: int | None = None,
) -> Published:
    """Release ``month`` to ``recipient`` under the covenants in force (``covenants``).

    ``threshold`` (default: the covenant's ``min_cell``) may raise the suppression floor, never
    lower it below what the covenant says.
    """
    if threshold is not None and threshold < DEFAULT_THRESHOLD:
        raise ReleaseRefused(
            f"threshold {threshold} is below {DEFAULT_THRESHOLD}: a release outside the hub "
            f"suppresses counts below at least {DEFAULT_THRESHOLD}. Fix: use "
            f"{DEFAULT_THRESHOLD} or more."
        )
    if in_progress([month], now.date()):
        raise ReleaseRefused(
            f"{month} is not over yet: its counts grow day by day, and two releases of it would "
            "give the signals of the days between away. Fix: publish it once it is over."
        )
    basis = grounds(covenants, recipient)
    if basis is None:
        raise ReleaseRefused(
            f"no covenant in force lets {recipient!r} receive coverage aggregates. Fix: add an "
            "`aggregates` entry with `report: coverage` naming that party in `to` "
            "(docs/covenants.md#aggregates)."
        )
    if threshold is None:
        threshold = basis.min_cell
    elif threshold < basis.min_cell:
        raise ReleaseRefused(
            f"threshold {threshold} is below the {basis.min_cell} that {basis.rule.covenant_id} "
            f"{basis.rule.rule_id} requires for {recipient!r}. Fix: use {basis.min_cell} or more."
        )
    published = release(store.counts([month]), municipalities, [month], threshold)
    out = aggregate_release(published, month, recipient, basis, now)
    value = orjson.dumps(out.message)
    entry = OutboxEntry(out.exchange_id, recipient, month.encode(), value, now)
    new = audit.record([out.audit], [entry]) == 1
    partition, offset = producer.send(feed_topic(recipient), entry.key, value)
    audit.mark_produced([(out.exchange_id, partition, offset)])
    rows = published.rows
    suppressed = sum((r.reports is None) + (r.indicators is None) for r in rows)
    return Published(out.exchange_id, new, len(rows), suppressed, partition, offset)
