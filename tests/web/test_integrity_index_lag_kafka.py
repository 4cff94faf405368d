"""The integrity page reads how far the audit index is behind from the broker: the audit
topic's end against the indexer group's committed offset (services/web/index_lag.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, TopicPartition
from kafka.errors import KafkaError

from services.audit.store import SqlAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core.audit_log import encode
from services.indexer.drain import drain
from services.indexer.loop import IndexerConfig, IndexerLoop
from services.web.index_lag import KafkaIndexLag
from tests.indexer.test_indexer_kafka import run
from tests.indexer.test_step import AT, record
from tests.web.conftest import Hub, make_app, sign_in

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


async def append(settings: KafkaSettings, topic: str, first: int, count: int, tx: bool) -> None:
    """``count`` audit-log messages (one record each); in one transaction each when ``tx``,
    as the router's transactional path writes them (a commit marker after each)."""
    producer = AIOKafkaProducer(
        acks="all",
        **({"transactional_id": f"{topic}-tx", "enable_idempotence": True} if tx else {}),
        **settings.client_kwargs_aiokafka(),
    )
    await producer.start()
    try:
        for n in range(first, first + count):
            (value,) = encode([record(n)], [], AT)
            if tx:
                async with producer.transaction():
                    await producer.send(topic, value, partition=0)
            else:
                await (await producer.send(topic, value, partition=0))
    finally:
        await producer.stop()


def test_an_indexer_behind_shows_by_how_much_and_a_caught_up_one_shows_zero(
    broker: EmbeddedBroker,
    kafka_settings: KafkaSettings,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
    hub: Hub,
) -> None:
    topic, group = unique_topic("audit"), unique_topic("indexer")
    tx = broker.supports_transactions  # noida: commit markers between the messages
    with KafkaTopicAdmin(kafka_settings) as admin:
        admin.ensure_topics({topic: 1})
    lag = KafkaIndexLag(kafka_settings, topic=topic, group=group)
    config = IndexerConfig(topic=topic, group_id=group)
    store = SqlAuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        asyncio.run(append(kafka_settings, topic, 0, 3, tx))
        assert lag().behind == 3 * (2 if tx else 1)  # never indexed: all of it (and markers)

        assert drain(kafka_settings, store, config, timeout_s=90) == 3
        assert lag().behind == 0  # caught up, commit markers included

        asyncio.run(append(kafka_settings, topic, 3, 2, tx))
        behind = lag().behind
        assert behind == 2 * (2 if tx else 1)

        client = make_app(hub, index_lag=lag)
        assert sign_in(client, "manager").status_code == 303
        page = client.get("/integrity").text
        assert f"The audit index is {behind} audit-log messages behind the audit log" in page
        assert client.get("/api/integrity").json()["index"]["behind"] == behind

        assert drain(kafka_settings, store, config, timeout_s=90) == 2
        assert lag().behind == 0
        assert "The audit index holds everything on the audit log" in client.get("/integrity").text
        assert store.count() == 5
    finally:
        store.close()


def test_a_broker_that_does_not_answer_leaves_the_lag_unknown() -> None:
    lag = KafkaIndexLag(KafkaSettings.local("127.0.0.1:9"), timeout_s=1.0)()
    assert lag.behind is None
    assert lag.reason.startswith("the broker did not answer (")
    assert "127.0.0.1" not in lag.reason


def test_a_running_indexer_that_is_idle_is_not_left_behind_by_commit_markers(
    broker: EmbeddedBroker,
    kafka_settings: KafkaSettings,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
) -> None:
    if not broker.supports_transactions:
        pytest.skip(f"{broker.name} has no transactions, so no commit markers")
    topic, group = unique_topic("audit"), unique_topic("indexer")
    with KafkaTopicAdmin(kafka_settings) as admin:
        admin.ensure_topics({topic: 1})
    asyncio.run(append(kafka_settings, topic, 0, 3, tx=True))
    store = SqlAuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    indexer = IndexerLoop(kafka_settings, store, IndexerConfig(topic=topic, group_id=group))
    lag = KafkaIndexLag(kafka_settings, topic=topic, group=group)
    try:
        polls = 0

        def indexed_then_idle() -> bool:
            nonlocal polls
            polls += indexer.stats.new >= 3
            return polls > 40  # a couple of seconds of empty polls after the last record

        assert asyncio.run(run(indexer, indexed_then_idle)) is None
        assert store.count() == 3
        assert lag().behind == 0
    finally:
        store.close()


def test_what_retention_deleted_is_not_counted_as_behind(
    broker: EmbeddedBroker,
    kafka_settings: KafkaSettings,
    unique_topic: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """An indexer that never committed, on a topic whose start retention deleted: the lag
    counts from the log start offset, and the indexer starts there."""
    topic, group = unique_topic("audit"), unique_topic("indexer")
    with KafkaTopicAdmin(kafka_settings) as admin:
        admin.ensure_topics({topic: 1})
    asyncio.run(append(kafka_settings, topic, 0, 10, tx=False))
    admin_client = KafkaAdminClient(**kafka_settings.client_kwargs_kafka_python())
    try:
        admin_client.delete_records({TopicPartition(topic, 0): 6})  # what retention does
    except KafkaError as exc:  # Tansu 0.6.0 drops the connection on DeleteRecords
        pytest.skip(f"{broker.name} cannot delete records ({exc.__class__.__name__})")
    finally:
        admin_client.close()
    lag = KafkaIndexLag(kafka_settings, topic=topic, group=group)
    assert lag().behind == 4  # offsets 6-9, not 10
    store = SqlAuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        config = IndexerConfig(topic=topic, group_id=group)
        assert drain(kafka_settings, store, config, timeout_s=90) == 4
        ids = sorted(str(body["record_id"]) for _, body in store.records())
        assert ids == [f"r-{n}" for n in range(6, 10)]
        assert lag().behind == 0
    finally:
        store.close()
