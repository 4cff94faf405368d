"""Fills the router's :class:`~services.router.audit_tail.AuditTail` from the ``audit`` topic.

At start-up it reads from the audit indexer group's committed offset (the log start offset if
the group never committed, or committed below it) to the end, ``read_committed``: everything
logged that the index may not hold, including the batch of a router that crashed after its
audit records were acknowledged. Before each batch it takes what arrived since (other routers'
records; its own it adds itself and skips by offset). Every few seconds it asks where the
indexer has committed and drops what lies below. A consumer without a group: it never commits.

``schakel up`` indexes the topic to its end before the routers start, so the start-up read is
short; a router started beside a lagging indexer reads that lag once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.broker.aborted import drop_ended_aborts
from services.broker.fetching import hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.core.audit_log import AuditLogError, decode
from services.router.audit_tail import AuditTail
from services.router.topics import AUDIT, AUDIT_INDEXER_GROUP

log = logging.getLogger("schakel.router")

IndexedUpto = Callable[[], Awaitable[int | None]]
"""The indexer group's committed offset on the audit topic (None if it never committed)."""
LOAD_TIMEOUT_S = 120.0
CATCH_UP_S = 10.0
"""How long a batch waits for the indexer to index what the tail's bound forgot (below the
consumer's poll interval) before the router stops, uncommitted."""
CATCH_UP_EVERY_S = 0.5
FETCH_WAIT_MS = 50
"""How long the tail's consumer waits in an empty fetch (it is read without waiting, before
each batch; the wait only spaces its background fetches)."""


class AuditTailIncompleteError(RuntimeError):
    """The tail forgot decisions (its bound) that the indexer has not indexed yet: screening
    could not see them, so nothing is decided."""


class TailReader:
    """Reads the audit topic into an :class:`AuditTail` (partition 0: the topic has one)."""

    def __init__(
        self,
        tail: AuditTail,
        consumer: Any,
        indexed_upto: IndexedUpto,
        *,
        topic: str = AUDIT,
        close: Callable[[], Awaitable[None]] | None = None,
        catch_up_s: float = CATCH_UP_S,
    ) -> None:
        self.tail = tail
        self._consumer = consumer
        self._indexed_upto = indexed_upto
        self._close = close
        self._catch_up_s = catch_up_s
        self._tp = TopicPartition(topic, 0)
        self.read = 0
        """Messages read from the topic so far (a start-up reads only the unindexed span)."""

    async def load(self, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Start the consumer and read from the indexer's committed offset to the end."""
        consumer = self._consumer
        await consumer.start()
        if isinstance(consumer, AIOKafkaConsumer):  # not the in-memory double
            hold_empty_fetches(consumer, FETCH_WAIT_MS)  # noida answers empty fetches at once
            drop_ended_aborts(consumer)  # noida lists aborts long ended
        consumer.assign([self._tp])
        start = (await consumer.beginning_offsets([self._tp]))[self._tp]
        indexed = await self._indexed()
        consumer.seek(self._tp, max(start, indexed or 0))
        await self.catch_up(timeout_s)

    async def catch_up(self, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Read to the topic's current end (at start-up, and when the group gave this router
        other partitions: what their previous owner logged last may not be fetched yet)."""
        consumer = self._consumer
        end = (await consumer.end_offsets([self._tp]))[self._tp]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            polled = await consumer.getmany(self._tp, timeout_ms=200, max_records=256)
            if polled:
                self._take(polled)
            elif await consumer.position(self._tp) >= end:
                return
        raise TimeoutError(
            f"the audit topic was not read to its end within {timeout_s:.0f} s. Fix: check the "
            "broker, and that the audit indexer runs (the router reads what it has not indexed)"
        )

    async def follow(self) -> None:
        """Take what the consumer has fetched since (no wait)."""
        polled = await self._consumer.getmany(self._tp, timeout_ms=0)
        if polled:
            self._take(polled)

    async def evict(self) -> None:
        """Drop what the indexer has committed past (it is in the index)."""
        indexed = await self._indexed()
        if indexed is not None:
            self.tail.evict_below(indexed)

    async def _indexed(self) -> int | None:
        """The indexer's committed offset, or None where it committed past the topic's end
        (the topic recreated, a broker that lost its tail): its consumer starts over from
        the earliest offset there, and nothing the tail holds is indexed yet."""
        indexed = await self._indexed_upto()
        if indexed is None:
            return None
        end = (await self._consumer.end_offsets([self._tp]))[self._tp]
        return indexed if indexed <= end else None

    async def until_complete(self) -> None:
        """Return once the tail and the index together hold every logged decision (at once,
        unless the tail's bound forgot some the indexer has not indexed: then wait for the
        indexer, and raise :class:`AuditTailIncompleteError` if it does not catch up in time)."""
        if self.tail.complete:
            return  # the usual case: no broker request
        deadline = time.monotonic() + self._catch_up_s
        while not self._complete_now(await self._indexed()):
            if time.monotonic() >= deadline:
                raise AuditTailIncompleteError(
                    f"the router's audit tail reached its bound of {self.tail.max_entries} "
                    "decisions and the audit indexer did not index the ones it forgot within "
                    f"{self._catch_up_s:.1f} s; deciding now could decide a signal twice. Fix: "
                    "check that the audit indexer runs and keeps up"
                )
            await asyncio.sleep(CATCH_UP_EVERY_S)

    def _complete_now(self, indexed: int | None) -> bool:
        if indexed is not None:
            self.tail.evict_below(indexed)
        return self.tail.complete

    async def stop(self) -> None:
        await self._consumer.stop()
        if self._close is not None:
            await self._close()

    def _take(self, polled: dict[Any, list[Any]]) -> None:
        for messages in polled.values():
            for message in messages:
                self.read += 1
                if message.offset in self.tail.own_offsets:
                    continue
                try:
                    self.tail.add(message.offset, decode(message.value or b""))
                except AuditLogError as exc:  # the indexer refuses it by offset, with a record
                    log.warning("audit topic offset %d not readable: %s", message.offset, exc)


def kafka_tail_reader(kafka: KafkaSettings, tail: AuditTail) -> TailReader:
    """A reader on the broker: a group-less ``read_committed`` consumer, and the admin client
    that asks for the indexer group's committed offset."""
    kwargs = kafka.client_kwargs_aiokafka()
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # past what retention deleted, never past unread records
        isolation_level="read_committed",
        fetch_max_wait_ms=FETCH_WAIT_MS,
        **kwargs,
    )
    admin = AIOKafkaAdminClient(**kwargs)
    started: list[bool] = []
    tp = TopicPartition(AUDIT, 0)

    async def indexed_upto() -> int | None:
        if not started:
            await admin.start()
            started.append(True)
        answer = await admin.list_consumer_group_offsets(AUDIT_INDEXER_GROUP, partitions=[tp])
        meta = answer.get(tp)
        return None if meta is None or meta.offset < 0 else int(meta.offset)

    async def close() -> None:
        if started:
            started.clear()  # a second stop (after a crash, then at shutdown) does nothing
            await admin.close()

    return TailReader(tail, consumer, indexed_upto, close=close)
