"""The audit indexer's loop: audit topic → SQL index, offsets committed after the SQL commit.

One consumer group (``schakel-audit-indexer``), ``read_committed`` (records of an aborted or
open router transaction are never indexed), manual commits. Per poll:

1. decode the messages (:func:`services.indexer.step.decode_all`);
2. write them to the store in one SQL transaction — records new by id chained onto the head,
   feed copies, checkpoint when due (:func:`services.indexer.step.index`);
3. **then** commit the offsets.

After an empty poll it commits its *position* where that moved past its last commit: the
consumer skips the control records that end each router transaction (and the records of an
aborted one) without returning them, so an indexer that indexed everything would otherwise
stay one offset behind the end of the topic, and the lag the integrity page reads from its
committed offset (:mod:`services.web.index_lag`) would never reach 0.

A crash before 3 re-reads the poll from the committed offset; the store drops the records it
has by id, so nothing is lost and nothing is doubled, and the chain continues from its head.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.audit.model import AuditStore
from services.broker.aborted import drop_ended_aborts
from services.broker.batch_loop import BatchLoop
from services.broker.fetching import hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.indexer.step import decode_all, index
from services.metrics.indexer import IndexerMetrics
from services.router.topics import AUDIT, AUDIT_INDEXER_GROUP

log = logging.getLogger("schakel.indexer")

CrashPoint = Callable[[str], None]
"""Called at "sql-committed" (after the SQL commit, before the offset commit); tests raise
there to attack the ordering. Never set in production."""
OpenConsumer = Callable[["IndexerConfig"], Any]
"""Builds the indexer's consumer of the audit topic: an aiokafka consumer in its group by
default (:func:`kafka_consumer`), :class:`services.indexer.testing.MemoryAuditTopic`'s in tests."""


@dataclass(frozen=True)
class IndexerConfig:
    topic: str = AUDIT
    group_id: str = AUDIT_INDEXER_GROUP
    max_messages: int = 64
    """Audit messages per poll (each carries up to 512 KiB of records)."""
    poll_timeout_ms: int = 200
    fetch_max_wait_ms: int = 50
    session_timeout_ms: int = 6_000
    """The floor noida and Kafka accept; Tansu's join takes half of it (paid at every start)."""
    heartbeat_interval_ms: int = 2_000


@dataclass
class IndexerStats:
    polls: int = 0
    messages: int = 0
    """Audit-topic messages read (each carries many records)."""
    records: int = 0
    new: int = 0
    refused: int = 0
    lag: int = 0


class IndexerLoop(BatchLoop):
    """The single writer of the router's audit records into SQL."""

    def __init__(
        self,
        kafka: KafkaSettings | None,
        store: AuditStore,
        config: IndexerConfig | None = None,
        *,
        metrics: IndexerMetrics | None = None,
        crash_point: CrashPoint | None = None,
        open_consumer: OpenConsumer | None = None,
    ) -> None:
        super().__init__()
        if open_consumer is None:
            if kafka is None:
                raise ValueError("IndexerLoop needs Kafka settings or an open_consumer")
            open_consumer = functools.partial(kafka_consumer, kafka)
        self._open_consumer = open_consumer
        self._store = store
        self._config = config or IndexerConfig()
        self._metrics = metrics
        self._crash_point = crash_point
        self.stats = IndexerStats()
        self._behind_since: float | None = None
        self._committed: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._consumer = self._open_consumer(self._config)
        await self._consumer.start()
        if isinstance(self._consumer, AIOKafkaConsumer):  # not the in-memory double
            hold_empty_fetches(self._consumer, self._config.fetch_max_wait_ms)
            drop_ended_aborts(self._consumer)  # noida lists aborts long ended

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("IndexerLoop used before start()")
        return self._consumer

    async def run(self) -> None:
        """Index until :meth:`stop`; a store error propagates with the offsets uncommitted."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("IndexerLoop.run() before start()")
        self._idle.clear()
        try:
            while not self._stopping.is_set():
                polled = await consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms,
                    max_records=self._config.max_messages,
                )
                if polled:
                    await self.process(polled)
                else:
                    await self.commit_position()
                await self._observe()
        finally:
            self._idle.set()

    async def process(self, polled: dict[TopicPartition, list[Any]]) -> None:
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("IndexerLoop.process() before start()")
        values = [(m.offset, m.value or b"") for ms in polled.values() for m in ms]
        decoded = decode_all(values)
        refused = decoded.refused
        done = await asyncio.to_thread(index, self._store, decoded)
        if self._crash_point is not None:
            self._crash_point("sql-committed")
        offsets = {tp: ms[-1].offset + 1 for tp, ms in polled.items() if ms}
        await consumer.commit(offsets)
        self._committed.update(offsets)
        self.stats.polls += 1
        self.stats.messages += len(values)
        self.stats.records += done.records
        self.stats.new += done.new
        self.stats.refused += refused
        if self._metrics is not None:
            self._metrics.indexed.inc(done.records)
            self._metrics.new.inc(done.new)
            self._metrics.refused.inc(refused)

    async def commit_position(self) -> None:
        """Commit the position of each assigned partition where it is past the last commit
        (control records and aborted records skipped since; nothing returned is left out:
        call it only when the last poll returned nothing)."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("IndexerLoop.commit_position() before start()")
        ahead = {}
        for tp in consumer.assignment():
            position = await consumer.position(tp)
            if position > self._committed.get(tp, 0):
                ahead[tp] = position
        if ahead:
            await consumer.commit(ahead)
            self._committed.update(ahead)

    async def lag(self) -> dict[int, int]:
        """Records per assigned partition between the position and the end (the last stable
        offset the last fetch reported, or the broker's end offset before any fetch)."""
        consumer = self._consumer
        if consumer is None:
            return {}
        assigned = list(consumer.assignment())
        ends: dict[TopicPartition, int] = {}
        unknown = []
        for tp in assigned:
            end = consumer.last_stable_offset(tp)
            if end is None:
                unknown.append(tp)
            else:
                ends[tp] = end
        if unknown:
            ends.update(await consumer.end_offsets(unknown))
        return {tp.partition: max(0, ends[tp] - await consumer.position(tp)) for tp in assigned}

    async def _observe(self) -> None:
        """Lag in records, and for how long the index has been behind (0 when caught up)."""
        lags = await self.lag()
        self.stats.lag = sum(lags.values())
        now = time.monotonic()
        if not self.stats.lag:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = now
        seconds = 0.0 if self._behind_since is None else now - self._behind_since
        if self._metrics is not None:
            self._metrics.observed(lags, seconds)


def kafka_consumer(kafka: KafkaSettings, config: IndexerConfig) -> AIOKafkaConsumer:
    """The indexer's consumer: its group, ``read_committed``, manual commits; a group that never
    committed starts at the log start offset (the earliest record retention has kept)."""
    return AIOKafkaConsumer(
        config.topic,
        group_id=config.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=config.max_messages,
        fetch_max_wait_ms=config.fetch_max_wait_ms,
        session_timeout_ms=config.session_timeout_ms,
        heartbeat_interval_ms=config.heartbeat_interval_ms,
        **kafka.client_kwargs_aiokafka(),
    )
