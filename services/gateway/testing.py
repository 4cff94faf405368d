"""In-memory doubles of the gateway's broker side: :class:`MemoryBroker` is both a
:class:`~services.gateway.ports.Producer` and a :class:`~services.gateway.ports.FeedSource`.

Topics and partition counts are kept by :class:`~services.broker.testing.MemoryTopicAdmin`
(the same validation and errors as the real admin), records in lists per partition. A record
goes to the partition its key hashes to, as Kafka's default partitioner does. ``fail_next``
makes the next sends fail as an unreachable broker would, for retry tests;
``reachable = False`` makes :meth:`MemoryBroker.ping` fail, for readiness tests. Waiting for new
records polls (every 10 ms), so the double works from any event loop or thread.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Mapping

from services.broker.errors import BrokerError
from services.broker.testing import MemoryTopicAdmin
from services.gateway.errors import GatewayError, UnknownTopic
from services.gateway.ports import FeedBatch, FeedRecord, Placed

_POLL_S = 0.01


class MemoryBroker:
    """Records held in memory; see the module docstring."""

    def __init__(self, admin: MemoryTopicAdmin | None = None) -> None:
        self.admin = admin or MemoryTopicAdmin()
        self._records: dict[str, list[list[tuple[bytes, bytes]]]] = {}
        self.fail_next = 0
        self.reachable = True
        self.sends = 0
        self.committed: dict[tuple[str, str], dict[int, int]] = {}

    def records(self, topic: str) -> list[tuple[bytes, bytes]]:
        """Every (key, value) of ``topic``, partition by partition."""
        return [record for partition in self._partitions(topic) for record in partition]

    def append(self, topic: str, value: bytes, *, key: bytes = b"", partition: int = 0) -> None:
        """Put a record on ``topic`` directly (as the router would write a feed)."""
        self._partitions(topic)[partition].append((key, value))
        self.admin.append(topic, partition)

    async def send(self, topic: str, key: bytes, value: bytes) -> Placed:
        self.sends += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise GatewayError("the broker did not acknowledge the record (simulated failure)")
        partitions = self._partitions(topic)
        partition = zlib.crc32(key) % len(partitions)
        partitions[partition].append((key, value))
        self.admin.append(topic, partition)
        return Placed(partition, len(partitions[partition]) - 1)

    async def ping(self) -> None:
        if not self.reachable:
            raise GatewayError("no broker answered (simulated outage)")

    async def read(
        self, topic: str, positions: Mapping[int, int], *, limit: int, wait_s: float
    ) -> FeedBatch:
        partitions = self._partitions(topic)
        deadline = time.monotonic() + wait_s
        while True:
            batch = self._read_now(partitions, positions, limit)
            if batch.records or time.monotonic() >= deadline:
                return batch
            await asyncio.sleep(_POLL_S)

    async def acknowledge(self, topic: str, group: str, positions: Mapping[int, int]) -> None:
        self._partitions(topic)
        if positions:
            self.committed.setdefault((topic, group), {}).update(positions)

    @staticmethod
    def _read_now(
        partitions: list[list[tuple[bytes, bytes]]], positions: Mapping[int, int], limit: int
    ) -> FeedBatch:
        records: list[FeedRecord] = []
        after: dict[int, int] = {}
        for number, held in enumerate(partitions):
            start = max(0, positions.get(number, 0))
            taken = held[start : start + max(0, limit - len(records))]
            records.extend(
                FeedRecord(number, start + i, value) for i, (_, value) in enumerate(taken)
            )
            after[number] = start + len(taken)
        return FeedBatch(records, after)

    def _partitions(self, topic: str) -> list[list[tuple[bytes, bytes]]]:
        try:
            count = self.admin.partitions(topic)
        except BrokerError as exc:
            raise UnknownTopic(str(exc)) from None
        held = self._records.setdefault(topic, [])
        while len(held) < count:
            held.append([])
        return held
