"""Does each embedded broker stamp a record with its own append time on a LogAppendTime topic?

The outcomes worker orders signals by when the hub received them, and a partner that produces
to Kafka directly sets its record's CreateTime itself — backdated, if it likes. The hub makes
its ``signals.*`` topics ``message.timestamp.type=LogAppendTime``
(:data:`services.router.topics.RECEIPT_TIME`); these tests record, per broker, whether the
broker then overrides the producer's timestamp. It matters for what the outcomes worker may
trust (:func:`services.outcomes.loop.receipt`, docs/outcomes.md).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.broker import EmbeddedBroker, KafkaSettings, KafkaTopicAdmin
from services.router.topics import RECEIPT_TIME

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

MONTH_MS = 30 * 86_400_000
HONOURS_LOG_APPEND_TIME = {"noida": True, "tansu": False}
"""What each embedded broker does with ``message.timestamp.type=LogAppendTime`` (measured
here): noida 0.2.3 stamps its append time (``timestamp_type`` 1); Tansu 0.6.0 stores the
config and reports it back, but keeps the producer's CreateTime (``timestamp_type`` 0)."""


async def _backdated_roundtrip(settings: KafkaSettings, topic: str) -> tuple[int, int, int]:
    """Produce one record stamped a month ago; (timestamp, timestamp_type) read back, and
    the wall-clock ms just before producing."""
    kwargs = settings.client_kwargs_aiokafka()
    producer = AIOKafkaProducer(acks="all", **kwargs)
    await producer.start()
    before = int(time.time() * 1000)
    try:
        await producer.send_and_wait(topic, b"probe", timestamp_ms=before - MONTH_MS)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(auto_offset_reset="earliest", enable_auto_commit=False, **kwargs)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    return message.timestamp, message.timestamp_type, before
        raise AssertionError(f"the probe record on {topic} was not read back within 20 s")
    finally:
        await consumer.stop()


@pytest.mark.parametrize("made", ["created", "altered"])
def test_a_backdated_record_on_a_log_append_time_topic(
    made: str, broker: EmbeddedBroker, topic_admin: KafkaTopicAdmin, unique_topic
) -> None:
    topic = f"signals.{unique_topic(made)}"
    if made == "created":
        topic_admin.ensure_topics({topic: 1}, {topic: RECEIPT_TIME})
    else:  # an existing topic from before the config: ensure_topics sets it
        topic_admin.ensure_topics({topic: 1})
        topic_admin.ensure_topics({topic: 1}, {topic: RECEIPT_TIME})
    assert topic_admin.topic_config(topic, "message.timestamp.type") == "LogAppendTime"
    settings = topic_admin.settings
    stamp, kind, before = asyncio.run(_backdated_roundtrip(settings, topic))
    if HONOURS_LOG_APPEND_TIME[broker.name]:
        assert kind == 1, "LogAppendTime"
        assert before <= stamp <= int(time.time() * 1000)
    else:  # the producer's claim comes back unchanged, and says it is one
        assert kind == 0, "CreateTime"
        assert stamp == before - MONTH_MS
