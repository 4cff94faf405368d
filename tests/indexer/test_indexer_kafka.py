"""The audit indexer on real brokers: a crash after the SQL commit, before the offset commit,
loses nothing and doubles nothing, and the chain verifies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.verification import public_keys, verify_store
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core.audit_log import encode
from services.database.engine import make_engine
from services.indexer.loop import IndexerConfig, IndexerLoop
from services.keys.testing import MemoryKeyStore
from tests.indexer.test_step import AT, record

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


class CrashError(Exception):
    """Stands for the indexer dying between its SQL commit and its offset commit."""


async def fill(settings: KafkaSettings, topic: str, batches: int, per: int) -> None:
    producer = AIOKafkaProducer(acks="all", **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        for b in range(batches):
            for value in encode([record(b * per + n) for n in range(per)], [], AT):
                await (await producer.send(topic, value, partition=0))
    finally:
        await producer.stop()


async def run(indexer: IndexerLoop, until: Callable[[], bool]) -> BaseException | None:
    await indexer.start()
    task = asyncio.create_task(indexer.run())
    deadline = time.monotonic() + 60
    while not until() and not task.done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await indexer.stop()
    await asyncio.wait({task}, timeout=15)
    return task.exception()


def test_an_indexer_crash_loses_nothing_and_doubles_nothing(
    kafka_settings: KafkaSettings, unique_topic: Callable[[str], str], tmp_path: Path
) -> None:
    asyncio.run(_crash_and_resume(kafka_settings, unique_topic("audit"), tmp_path))


async def _crash_and_resume(settings: KafkaSettings, topic: str, tmp_path: Path) -> None:
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({topic: 1})
    await fill(settings, topic, batches=10, per=30)
    keys = MemoryKeyStore.for_tests()
    store = SqlAuditStore(
        make_engine(f"sqlite:///{tmp_path / 'audit.db'}"), Checkpointer(KeyStoreSigner(keys))
    )
    store.create_schema()
    config = IndexerConfig(topic=topic, group_id=f"{topic}.indexer", max_messages=1)
    polls: list[str] = []

    def crash_on_third(point: str) -> None:
        polls.append(point)
        if len(polls) == 3:
            raise CrashError(point)

    first = IndexerLoop(settings, store, config, crash_point=crash_on_third)
    failed = await run(first, lambda: False)
    assert isinstance(failed, CrashError)
    written = store.count()
    assert 0 < written < 300  # the crashed poll's records are in SQL, its offsets not committed

    second = IndexerLoop(settings, store, config)
    assert await run(second, lambda: store.count() >= 300 and second.stats.lag == 0) is None
    assert second.stats.records > 300 - written  # it re-read the crashed poll ...
    assert store.count() == 300  # ... and dropped its records by id: no loss, no duplicate
    ids = [str(body["record_id"]) for _, body in store.records(limit=1000)]
    assert sorted(ids) == sorted(f"r-{n}" for n in range(300))
    store.checkpoint()
    assert verify_store(store, public_keys(keys)).ok
    store.close()
