"""A batch whose partition the group took away while it was written does not crash the worker
through its metrics (services/router/loop.py ``_highwater``).

Seen in tests/router/test_workers_kafka.py under load: a second worker joined while the first
wrote its batch; the batch's metrics asked aiokafka for the high water mark of a partition no
longer assigned, aiokafka asserted, and the worker died (with static membership its partitions
then stayed with nobody until its session expired).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.broker.settings import KafkaSettings
from services.metrics.router import RouterMetrics
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


def test_a_revoked_partitions_batch_is_counted_without_its_lag_and_without_a_crash() -> None:
    loop = RouterLoop(
        KafkaSettings.local("127.0.0.1:9"),
        NOTHING,
        NOTHING,
        LoopConfig(topics=["signals.a"]),
        clock=NOTHING,
    )
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
