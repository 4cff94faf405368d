"""Produce and consume through each broker with both client libraries the hub uses."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError as AIOKafkaError
from kafka import KafkaConsumer, KafkaProducer

from services.broker import EmbeddedBroker, KafkaSettings, KafkaTopicAdmin

pytestmark = pytest.mark.kafka

RECORDS = 200
#: The shortest session timeout noida (like Kafka's default group.min.session.timeout.ms)
#: accepts; it keeps Tansu's group join (half the session timeout) to 3 s.
GROUP_TIMINGS = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


def payloads(tag: str) -> list[bytes]:
    return [f"{tag}-{i:04d}".encode() for i in range(RECORDS)]


def test_kafka_python_round_trip(
    kafka_settings: KafkaSettings, topic_admin: KafkaTopicAdmin, unique_topic
):
    topic = unique_topic()
    topic_admin.ensure_topics({topic: 2})
    sent = payloads("kp")
    producer = KafkaProducer(**kafka_settings.client_kwargs_kafka_python(), linger_ms=5)
    try:
        for i, value in enumerate(sent):
            producer.send(topic, value, key=str(i % 7).encode())
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)
    consumer = KafkaConsumer(
        topic,
        **kafka_settings.client_kwargs_kafka_python(),
        group_id=unique_topic("group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **GROUP_TIMINGS,
    )
    received: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while len(received) < RECORDS and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                received.extend(record.value for record in records)
        consumer.commit()
    finally:
        consumer.close()
    assert sorted(received) == sorted(sent)
    assert sum(topic_admin.end_offsets(topic).values()) == RECORDS


def test_aiokafka_round_trip(
    kafka_settings: KafkaSettings, topic_admin: KafkaTopicAdmin, unique_topic
):
    topic = unique_topic()
    topic_admin.ensure_topics({topic: 2})
    sent = payloads("aio")
    group = unique_topic("group")

    async def scenario() -> list[bytes]:
        producer = AIOKafkaProducer(**kafka_settings.client_kwargs_aiokafka(), linger_ms=5)
        await producer.start()
        try:
            batch = [await producer.send(topic, value, key=value[-1:]) for value in sent]
            await asyncio.gather(*batch)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic,
            **kafka_settings.client_kwargs_aiokafka(),
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            **GROUP_TIMINGS,
        )
        await consumer.start()
        received: list[bytes] = []
        try:
            deadline = time.monotonic() + 30
            while len(received) < RECORDS and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    received.extend(record.value for record in records)
            await consumer.commit()
        finally:
            await consumer.stop()
        return received

    received = asyncio.run(asyncio.wait_for(scenario(), 60))
    assert sorted(received) == sorted(sent)


def test_transactions_match_what_the_broker_declares(
    broker: EmbeddedBroker,
    kafka_settings: KafkaSettings,
    topic_admin: KafkaTopicAdmin,
    unique_topic,
):
    topic = unique_topic()
    topic_admin.ensure_topics({topic: 1})

    async def commit_one() -> None:
        producer = AIOKafkaProducer(
            **kafka_settings.client_kwargs_aiokafka(), transactional_id=unique_topic("tx")
        )
        try:
            await asyncio.wait_for(producer.start(), 15)
            async with producer.transaction():
                await producer.send_and_wait(topic, b"in a transaction", partition=0)
        finally:
            await producer.stop()

    if broker.supports_transactions:
        asyncio.run(commit_one())
        consumer = KafkaConsumer(
            topic,
            **kafka_settings.client_kwargs_kafka_python(),
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        received: list[bytes] = []
        deadline = time.monotonic() + 15
        try:
            while not received and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    received.extend(record.value for record in records)
        finally:
            consumer.close()
        assert received == [b"in a transaction"]
    else:
        with pytest.raises(AIOKafkaError):
            asyncio.run(commit_one())
