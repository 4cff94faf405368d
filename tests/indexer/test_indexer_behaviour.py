"""The audit indexer's behaviour, the same tests on the in-memory audit log
(services/indexer/testing.py) and on the real brokers (Tansu, noida):

* a crash between the SQL commit and the offset commit loses nothing and doubles nothing;
* a drain (what ``schakel up`` does at start-up) reads from the committed offset, so its work
  does not grow with the topic;
* an indexer that never committed starts at the log start offset, and its lag counts from there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.audit.testing import MemoryAuditStore
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core.audit_log import encode
from services.indexer.drain import run_drain
from services.indexer.loop import IndexerConfig, IndexerLoop, OpenConsumer
from services.indexer.testing import MemoryAuditTopic
from tests.indexer.test_indexer_kafka import CrashError, run
from tests.indexer.test_step import AT, record

pytestmark = pytest.mark.timeout(180)

LOGS = [
    "memory",
    pytest.param("tansu", marks=pytest.mark.kafka),
    pytest.param("noida", marks=pytest.mark.kafka),
]


@dataclass
class AuditLog:
    """One audit topic to index: in memory, or on a real broker."""

    config: IndexerConfig
    settings: KafkaSettings | None = None
    memory: MemoryAuditTopic | None = None

    @property
    def open_consumer(self) -> OpenConsumer | None:
        memory = self.memory
        if memory is None:
            return None
        return lambda config: memory.consumer(config.group_id)

    def indexer(self, store: Any, **kwargs: Any) -> IndexerLoop:
        return IndexerLoop(
            self.settings, store, self.config, open_consumer=self.open_consumer, **kwargs
        )

    def fill(self, first: int, count: int, per: int = 1) -> None:
        """``count`` messages of ``per`` records each, numbered from ``first``."""
        values = [
            value
            for b in range(first, first + count)
            for value in encode([record(b * per + n) for n in range(per)], [], AT)
        ]
        if self.memory is not None:
            self.memory.extend(values)
        else:
            asyncio.run(_produce(self.settings, self.config.topic, values))


async def _produce(settings: KafkaSettings | None, topic: str, values: list[bytes]) -> None:
    assert settings is not None
    producer = AIOKafkaProducer(acks="all", **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        for value in values:
            await (await producer.send(topic, value, partition=0))
    finally:
        await producer.stop()


@pytest.fixture(params=LOGS)
def audit_log(request: pytest.FixtureRequest, unique_topic: Callable[[str], str]) -> AuditLog:
    topic = unique_topic("audit")
    config = IndexerConfig(topic=topic, group_id=f"{topic}.indexer", max_messages=4)
    if request.param == "memory":
        return AuditLog(config, memory=MemoryAuditTopic(topic))
    pool = request.getfixturevalue("broker_pool")
    settings = KafkaSettings.local(pool.get(request.param).bootstrap)
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({topic: 1})
    return AuditLog(config, settings=settings)


def test_a_crash_after_the_sql_commit_loses_nothing_and_doubles_nothing(
    audit_log: AuditLog,
) -> None:
    audit_log.fill(0, 12, per=10)
    store = MemoryAuditStore()
    polls: list[str] = []

    def crash_on_second(point: str) -> None:
        polls.append(point)
        if len(polls) == 2:
            raise CrashError(point)

    first = audit_log.indexer(store, crash_point=crash_on_second)
    assert isinstance(asyncio.run(run(first, lambda: False)), CrashError)
    written = store.count()
    assert 0 < written < 120  # the crashed poll is in the store, its offsets not committed

    second = audit_log.indexer(store)
    assert asyncio.run(run(second, lambda: store.count() >= 120 and second.stats.lag == 0)) is None
    assert second.stats.records > 120 - written  # it re-read the crashed poll ...
    ids = sorted(str(body["record_id"]) for _, body in store.records(limit=1000))
    assert ids == sorted(f"r-{n}" for n in range(120))  # ... and dropped its records by id


def test_a_start_up_drain_reads_only_what_the_indexer_left(audit_log: AuditLog) -> None:
    store = MemoryAuditStore()
    audit_log.fill(0, 40)
    first = run_drain(
        audit_log.settings, store, audit_log.config, open_consumer=audit_log.open_consumer
    )
    assert (first.messages, first.new) == (40, 40)
    audit_log.fill(40, 3)
    second = run_drain(
        audit_log.settings, store, audit_log.config, open_consumer=audit_log.open_consumer
    )
    # the committed offset is where the second drain starts: 3 messages, not 43
    assert (second.messages, second.new) == (3, 3)
    third = run_drain(
        audit_log.settings, store, audit_log.config, open_consumer=audit_log.open_consumer
    )
    assert (third.messages, third.new) == (0, 0)
    assert store.count() == 43


def test_an_indexer_that_never_committed_starts_at_the_log_start_and_counts_lag_from_there() -> (
    None
):
    topic = MemoryAuditTopic("audit-retained")
    log = AuditLog(IndexerConfig(topic=topic.topic, group_id="g"), memory=topic)
    log.fill(0, 10)
    topic.delete_before(6)  # retention removed offsets 0-5 before any indexer ran
    store = MemoryAuditStore()
    indexer = log.indexer(store)

    async def lag_then_index() -> int:
        await indexer.start()
        try:
            before = sum((await indexer.lag()).values())
            polled = await indexer.consumer.getmany(timeout_ms=10, max_records=100)
            await indexer.process(polled)
            return before
        finally:
            await indexer.stop()

    assert asyncio.run(lag_then_index()) == 4  # offsets 6-9, not 10
    assert sorted(str(b["record_id"]) for _, b in store.records()) == [
        f"r-{n}" for n in range(6, 10)
    ]
