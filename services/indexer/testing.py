"""In-memory double of the Kafka audit log: the ``audit`` topic and its consumers, no broker.

:class:`MemoryAuditTopic` holds one partition's messages by offset, a *log start offset* (what
retention has deleted lies below it) and the committed offsets of each consumer group.
:meth:`MemoryAuditTopic.consumer` gives the subset of :class:`aiokafka.AIOKafkaConsumer` the
audit indexer (:mod:`services.indexer.loop`) and the router's audit tail
(:mod:`services.router.audit_tail`) call, with Kafka's semantics where they matter: a group
without a committed offset (or with one below the log start) starts at the log start
(``auto_offset_reset="earliest"``), a poll returns at most ``max_records`` messages from the
position, the end offset is one past the last message. Every message a consumer returns is
counted in :attr:`MemoryAuditTopic.read`, so a test can say how much a start-up read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from services.router.topics import AUDIT


@dataclass(frozen=True)
class MemoryMessage:
    """What the indexer reads of a consumer record."""

    topic: str
    partition: int
    offset: int
    value: bytes


@dataclass
class MemoryAuditTopic:
    """One partition of the audit topic, with retention and per-group committed offsets."""

    topic: str = AUDIT
    values: dict[int, bytes] = field(default_factory=dict)
    end: int = 0
    log_start: int = 0
    committed: dict[str, int] = field(default_factory=dict)
    read: int = 0
    """Messages returned by all consumers' polls so far."""

    def append(self, value: bytes) -> int:
        """Add a message at the end; its offset."""
        offset = self.end
        self.values[offset] = value
        self.end += 1
        return offset

    def extend(self, values: Iterable[bytes]) -> list[int]:
        return [self.append(value) for value in values]

    def delete_before(self, offset: int) -> None:
        """What retention does: every message below ``offset`` is gone (log start moves)."""
        for gone in [o for o in self.values if o < offset]:
            del self.values[gone]
        self.log_start = max(self.log_start, min(offset, self.end))

    def consumer(self, group_id: str | None = None) -> MemoryAuditConsumer:
        return MemoryAuditConsumer(self, group_id)


class MemoryAuditConsumer:
    """The part of an aiokafka consumer the indexer and the router's audit tail use."""

    def __init__(self, topic: MemoryAuditTopic, group_id: str | None) -> None:
        self._topic = topic
        self._group = group_id
        self._tp = TopicPartition(topic.topic, 0)
        self._position: int | None = None
        self._started = False

    async def start(self) -> None:
        self._started = True

    async def stop(self) -> None:
        self._started = False

    def assign(self, partitions: list[TopicPartition]) -> None:
        """Manual assignment (the router's audit tail); a group consumer is assigned at start."""

    def assignment(self) -> set[TopicPartition]:
        return {self._tp} if self._started else set()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._position = offset

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[MemoryMessage]]:
        start = await self.position(self._tp)
        stop = self._topic.end if max_records is None else min(self._topic.end, start + max_records)
        out = [
            MemoryMessage(self._topic.topic, 0, offset, self._topic.values[offset])
            for offset in range(start, stop)
        ]
        if not out:
            await asyncio.sleep(min(timeout_ms, 20) / 1000)
            return {}
        self._position = stop
        self._topic.read += len(out)
        return {self._tp: out}

    async def position(self, tp: TopicPartition) -> int:
        if self._position is None:
            committed = self._topic.committed.get(self._group or "", None)
            self._position = self._topic.log_start if committed is None else committed
        # a position below the log start is out of range: reset to the earliest offset
        self._position = max(self._position, self._topic.log_start)
        return self._position

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._group is None:
            raise RuntimeError("commit() of a consumer without a group")
        self._topic.committed[self._group] = offsets[self._tp]

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._topic.committed.get(self._group or "", None)

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self._topic.end

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, self._topic.end)

    async def beginning_offsets(
        self, partitions: list[TopicPartition]
    ) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, self._topic.log_start)
