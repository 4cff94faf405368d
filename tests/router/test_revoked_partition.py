"""A batch whose partition the group took away while it was written does not crash the worker
through its metrics (services/router/loop.py ``_highwater``).

Seen in tests/router/test_workers_kafka.py under load: a second worker joined while the first
wrote its batch; the batch's metrics asked aiokafka for the high water mark of a partition no
longer assigned, aiokafka asserted, and the worker died (with static membership its partitions
then stayed with nobody until its session expired).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.broker.settings import KafkaSettings
from services.metrics.router import RouterMetrics
from services.router.batch import RoutedBatch
from services.router.loop import LoopConfig, RouterLoop

pytestmark = pytest.mark.timeout(30)

NOTHING: Any = None
OURS = TopicPartition("signals.a", 0)
TAKEN = TopicPartition("signals.a", 1)


class Consumer:
    """aiokafka's consumer as far as the metrics see it: asserts on an unassigned partition."""

    def assignment(self) -> set[TopicPartition]:
        return {OURS}

    def highwater(self, tp: TopicPartition) -> int:
        assert tp in self.assignment(), "Partition is not assigned"
        return 10


def _unconnected_router() -> RouterLoop:
    """A router that never connects: the tests give it their own clients."""
    return RouterLoop(
        KafkaSettings.local("127.0.0.1:9"),
        NOTHING,
        NOTHING,
        LoopConfig(topics=["signals.a"]),
        clock=NOTHING,
    )


def test_a_revoked_partitions_batch_is_counted_without_its_lag_and_without_a_crash() -> None:
    loop = _unconnected_router()
    loop._consumer = Consumer()  # type: ignore[assignment]
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    message = SimpleNamespace(offset=3, timestamp=0)
    metrics.batch_done({OURS: [message], TAKEN: [message]}, [], [], loop._highwater)
    lag = {
        sample.labels["partition"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == "schakel_consumer_lag"
    }
    assert lag == {"0": 6.0}  # ours: high water 10 - next offset 4; the taken one: unknown
    assert metrics.batches._value.get() == 1


class Producer:
    """aiokafka's transactional producer as far as the commit step sees it."""

    def __init__(self) -> None:
        self.steps: list[str] = []

    async def begin_transaction(self) -> None:
        self.steps.append("begin")

    async def send_offsets_to_transaction(self, offsets: object, group_id: str) -> None:
        self.steps.append("offsets")  # accepted: aiokafka's v0 request names no generation

    async def commit_transaction(self) -> None:
        self.steps.append("commit")

    async def abort_transaction(self) -> None:
        self.steps.append("abort")


class Rebalanced(Consumer):
    def __init__(self) -> None:
        self.seeks: list[TopicPartition] = []

    async def committed(self, tp: TopicPartition) -> int:
        return 2

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(tp)


@pytest.mark.parametrize(("batch", "committed"), [({OURS}, True), ({OURS, TAKEN}, False)])
def test_a_batch_of_a_partition_given_away_meanwhile_is_aborted_not_committed(
    batch: set[TopicPartition], committed: bool
) -> None:
    """The broker does not refuse the offsets of a router that lost a partition mid-batch
    (no generation in aiokafka's TxnOffsetCommit), so the router checks before it commits: a
    batch with a partition no longer its own is aborted, and its own partitions read again."""
    loop = _unconnected_router()
    producer, consumer = Producer(), Rebalanced()
    loop._producer = producer  # type: ignore[assignment]
    loop._consumer = consumer  # type: ignore[assignment]

    async def nothing_sent(*_: object) -> list[object]:
        return []

    async def audit_at(*_: object) -> int:
        return 7

    loop._send_feeds = nothing_sent  # type: ignore[method-assign,assignment]
    loop._send_audit = audit_at  # type: ignore[method-assign,assignment]
    loop._logged = lambda *_: None  # type: ignore[method-assign,assignment]
    routed = RoutedBatch()
    offsets = dict.fromkeys(batch, 4)
    asyncio.run(loop._write_transactional(routed, offsets, datetime(2026, 12, 6, tzinfo=UTC)))
    assert producer.steps == ["begin", "offsets", "commit" if committed else "abort"]
    assert consumer.seeks == ([] if committed else [OURS])
