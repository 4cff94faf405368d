"""TopicAdmin behaviour, identical for the in-memory double and both real brokers.

Each test runs against ``memory`` (MemoryTopicAdmin) and against every selected broker
(KafkaTopicAdmin on the session broker). Producing records differs between the two — a real
producer versus ``MemoryTopicAdmin.append`` — and is hidden behind ``Backend.produce``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from kafka import KafkaProducer

from services.broker import BrokerError, KafkaSettings, KafkaTopicAdmin, TopicAdmin, missing_topics
from services.broker.process import free_loopback_port
from services.broker.testing import MemoryTopicAdmin
from tests.kafka_fixtures import BrokerPool, selected_brokers


@dataclass
class Backend:
    admin: TopicAdmin
    produce: Callable[[str, int, int], None]  # topic, partition, records (sent as one batch)


def _memory_backend() -> Backend:
    admin = MemoryTopicAdmin()

    def produce(topic: str, partition: int, records: int) -> None:
        admin.append(topic, partition, records)

    return Backend(admin, produce)


def _kafka_backend(settings: KafkaSettings, admin: KafkaTopicAdmin) -> Backend:
    def produce(topic: str, partition: int, records: int) -> None:
        producer = KafkaProducer(
            **settings.client_kwargs_kafka_python(), linger_ms=50, batch_size=1 << 20
        )
        try:
            futures = [producer.send(topic, b"x" * 10, partition=partition) for _ in range(records)]
            producer.flush(timeout=10)
            for future in futures:
                future.get(timeout=10)
        finally:
            producer.close(timeout=5)

    return Backend(admin, produce)


@pytest.fixture(
    params=["memory", *(pytest.param(kind, marks=pytest.mark.kafka) for kind in selected_brokers())]
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        yield _memory_backend()
        return
    pool: BrokerPool = request.getfixturevalue("broker_pool")
    settings = KafkaSettings.local(pool.get(request.param).bootstrap)
    with KafkaTopicAdmin(settings) as admin:
        yield _kafka_backend(settings, admin)


def test_ensure_topics_creates_with_declared_partitions(backend: Backend, unique_topic):
    spec = {unique_topic("one"): 1, unique_topic("six"): 6, unique_topic("two"): 2}
    assert missing_topics(backend.admin, spec) == sorted(spec)
    assert backend.admin.ensure_topics(spec) == sorted(spec)
    for topic, partitions in spec.items():
        assert backend.admin.partitions(topic) == partitions  # not a broker default (Tansu: 4)
    assert set(spec) <= set(backend.admin.list_topics())
    assert missing_topics(backend.admin, spec) == []


def test_ensure_topics_is_idempotent_and_accepts_more_partitions(backend: Backend, unique_topic):
    topic = unique_topic()
    assert backend.admin.ensure_topics({topic: 3}) == [topic]
    assert backend.admin.ensure_topics({topic: 3}) == []
    assert backend.admin.ensure_topics({topic: 2}) == []  # more than declared is fine
    assert backend.admin.partitions(topic) == 3


def test_declared_configs_are_set_on_new_and_existing_topics(backend: Backend, unique_topic):
    """A topic made before the hub declared a config gets it at the next ensure_topics."""
    admin, key = backend.admin, "message.timestamp.type"
    fresh, older, plain = unique_topic("fresh"), unique_topic("older"), unique_topic("plain")
    admin.ensure_topics({older: 1, plain: 1})
    assert admin.topic_config(older, key) in (None, "CreateTime")
    declared = {fresh: {key: "LogAppendTime"}, older: {key: "LogAppendTime"}}
    assert admin.ensure_topics({fresh: 1, older: 1, plain: 1}, declared) == [fresh]
    assert admin.topic_config(fresh, key) == "LogAppendTime"
    assert admin.topic_config(older, key) == "LogAppendTime"
    assert admin.topic_config(plain, key) in (None, "CreateTime")


def test_too_few_partitions_names_topic_and_fix_and_creates_nothing(backend: Backend, unique_topic):
    small, fresh = unique_topic("small"), unique_topic("fresh")
    backend.admin.ensure_topics({small: 1})
    with pytest.raises(BrokerError) as caught:
        backend.admin.ensure_topics({fresh: 2, small: 4})
    message = str(caught.value)
    assert small in message
    assert "1 partition(s)" in message
    assert "--partitions 4" in message
    assert fresh not in backend.admin.list_topics()
    assert backend.admin.partitions(small) == 1


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"bad topic": 1}, "not a legal Kafka topic name"),
        ({"x" * 250: 1}, "not a legal Kafka topic name"),
        ({"..": 1}, "not a legal Kafka topic name"),
        ({"ok-name": 0}, "at least 1"),
        ({"ok-name": True}, "at least 1"),
    ],
)
def test_invalid_spec_is_rejected(backend: Backend, spec, fragment):
    with pytest.raises(BrokerError, match=fragment):
        backend.admin.ensure_topics(spec)


def test_unknown_topic_is_an_error_and_is_not_auto_created(backend: Backend, unique_topic):
    topic = unique_topic("ghost")
    with pytest.raises(BrokerError, match="does not exist"):
        backend.admin.partitions(topic)
    with pytest.raises(BrokerError, match="does not exist"):
        backend.admin.end_offsets(topic)
    assert topic not in backend.admin.list_topics()


def test_list_topics_hides_internal_topics(backend: Backend, unique_topic):
    backend.admin.ensure_topics({unique_topic(): 1})
    listed = backend.admin.list_topics()
    assert listed == sorted(listed)
    assert not [topic for topic in listed if topic.startswith("__")]


def test_delete_topics_is_idempotent(backend: Backend, unique_topic):
    keep, drop = unique_topic("keep"), unique_topic("drop")
    backend.admin.ensure_topics({keep: 1, drop: 2})
    backend.admin.delete_topics([drop, unique_topic("never-existed")])
    listed = backend.admin.list_topics()
    assert drop not in listed
    assert keep in listed
    backend.admin.delete_topics([drop])
    assert missing_topics(backend.admin, {keep: 1, drop: 2}) == [drop]


def test_end_offsets_count_records_even_in_multi_record_batches(backend: Backend, unique_topic):
    topic = unique_topic()
    backend.admin.ensure_topics({topic: 3})
    assert backend.admin.end_offsets(topic) == {0: 0, 1: 0, 2: 0}
    backend.produce(topic, 1, 5)  # one batch of five records
    backend.produce(topic, 1, 3)
    backend.produce(topic, 2, 1)
    assert backend.admin.end_offsets(topic) == {0: 0, 1: 8, 2: 1}


def test_memory_double_appends_and_loses_data_like_a_restarted_tansu():
    admin = MemoryTopicAdmin()
    spec = {"signals.liander": 2, "feed.riec-nh": 1}
    admin.ensure_topics(spec)
    assert admin.append("signals.liander", 1, 4) == 4
    with pytest.raises(BrokerError, match="no partition 2"):
        admin.append("signals.liander", 2)
    admin.lose_data()
    assert missing_topics(admin, spec) == sorted(spec)


def test_unreachable_cluster_fails_fast_with_the_address():
    address = f"127.0.0.1:{free_loopback_port()}"
    admin = KafkaTopicAdmin(KafkaSettings.local(address), timeout=1.0)
    began = time.monotonic()
    with pytest.raises(BrokerError, match=address):
        admin.list_topics()
    assert time.monotonic() - began < 10
    admin.close()
