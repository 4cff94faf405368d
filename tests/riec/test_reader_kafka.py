"""The feed reader on a real broker: it stores what the RIEC's feed holds, commits after
storing, skips (and counts) what is not a feed message, and a restart neither loses an item
nor stores one twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.broker.settings import KafkaSettings
from services.core.pseudonyms import Pseudonymiser
from services.riec.locate import locator
from services.riec.model import QueueFilters
from services.riec.worker import FeedReader
from services.router.topics import feed_topic
from tests.riec.helpers import build, user

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def _produce(settings: KafkaSettings, topic: str, raws: list[bytes]) -> None:
    producer = AIOKafkaProducer(**settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        for raw in raws:
            await producer.send(topic, raw)
        await producer.flush()
    finally:
        await producer.stop()


async def _run_until(reader: FeedReader, done: Callable[[], bool], timeout: float) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop))
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline and not task.done():
        await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 30)


def test_the_reader_stores_commits_and_resumes(kafka_settings, topic_admin, tmp_path: Path):
    site = build(tmp_path / "riec.db")
    with site.engine.begin() as connection:  # start empty: the reader fills it
        connection.exec_driver_sql("DELETE FROM riec_items")
    recipient = f"riec-test-{uuid.uuid4().hex[:6]}"
    topic = feed_topic(recipient)
    topic_admin.ensure_topics({topic: 2})
    messages = [orjson.dumps(m) for m in site.feed.messages]
    first, second = messages[:150], messages[150:]
    locate = locator(Pseudonymiser(site.keys))
    group = f"riec-{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[FeedReader, FeedReader]:
        await _produce(kafka_settings, topic, [*first, b"{not json", b"[1, 2]"])
        one = FeedReader(kafka_settings, site.workplace, locate, [recipient], group_id=group)
        await _run_until(one, lambda: one.stored + one.skipped >= len(first) + 2, 60)
        await _produce(kafka_settings, topic, second + first[:10])  # a replay of ten
        two = FeedReader(kafka_settings, site.workplace, locate, [recipient], group_id=group)
        await _run_until(two, lambda: two.stored >= len(second), 60)
        return one, two

    one, two = asyncio.run(scenario())
    assert (one.stored, one.skipped) == (len(first), 2)
    assert (two.stored, two.skipped) == (len(second), 0)
    admin = user(site, "admin")
    stored = site.workplace.queue(admin, QueueFilters(), limit=10_000)
    assert {i.id for i in stored} == {m["exchange_id"] for m in site.feed.messages}
    assert {i.recipient for i in stored} == {recipient}
    site.engine.dispose()


def test_a_hand_over_is_published_on_the_riecs_signals_topic(kafka_settings, topic_admin):
    from aiokafka import AIOKafkaConsumer

    from services.riec.publish import kafka_publisher
    from services.router.topics import signals_topic

    source = f"riec-test-{uuid.uuid4().hex[:6]}"
    topic_admin.ensure_topics({signals_topic(source): 1})
    raw = orjson.dumps({"id": "case-2026-0001-handover-1", "source": source})
    kafka_publisher(kafka_settings)(source, raw)

    async def read() -> list[bytes]:
        consumer = AIOKafkaConsumer(
            signals_topic(source), auto_offset_reset="earliest", enable_auto_commit=False,
            group_id=f"check-{uuid.uuid4().hex[:6]}", **kafka_settings.client_kwargs_aiokafka(),
        )  # fmt: skip
        await consumer.start()
        try:
            batch = await consumer.getmany(timeout_ms=10_000)
            return [m.value for messages in batch.values() for m in messages if m.value]
        finally:
            await consumer.stop()

    assert asyncio.run(read()) == [raw]
