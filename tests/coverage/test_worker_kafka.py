"""The coverage worker on a real broker: counts what arrives, commits after storing, and a
restart neither loses nor double-counts."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from services.coverage.ingest import ingest
from services.coverage.testing import MemoryCoverageStore
from services.coverage.worker import CoverageWorker
from tests.router.helpers import NOW, policy_source

pytestmark = pytest.mark.slow


async def _produce(settings, topic: str, raws: list[bytes]) -> None:
    producer = AIOKafkaProducer(**settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        for raw in raws:
            await producer.send(topic, raw)
        await producer.flush()
    finally:
        await producer.stop()


async def _run_until(worker: CoverageWorker, done, timeout: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 30)


def test_the_worker_counts_commits_and_resumes(kafka_settings, topic_admin, unique_topic, raw):
    topic = unique_topic("signals")
    topic_admin.ensure_topics({topic: 2})
    group = f"coverage-{uuid.uuid4().hex[:8]}"
    first, second = raw[:200], raw[200:300]
    source = policy_source()
    expected = MemoryCoverageStore()
    ingest(first + second, source.current.registry, source.current.policy, expected, NOW)
    months = expected.months()

    store = MemoryCoverageStore()

    def clock() -> datetime:
        return datetime.now(UTC)

    async def scenario() -> tuple[int, int]:
        await _produce(kafka_settings, topic, first)
        one = CoverageWorker(kafka_settings, store, source, [topic], clock, group_id=group)
        await _run_until(one, lambda: one.totals.read >= len(first), 60)
        await _produce(kafka_settings, topic, second)
        two = CoverageWorker(kafka_settings, store, source, [topic], clock, group_id=group)
        await _run_until(two, lambda: two.totals.read >= len(second), 60)
        return one.totals.read, two.totals.read

    read_first, read_second = asyncio.run(scenario())
    assert read_first == len(first)
    assert read_second == len(second)  # committed offsets: the first batch is not read again
    assert store.counts(months) == expected.counts(months)
