"""An idle router's audit tail keeps up with what other routers log, on a real broker.

aiokafka fetches a partition again only once its buffered records are taken: a router whose
tail was read only when it screened a batch held one stale fetch while idle, and a signal
another router had logged (and died before producing or committing: audit-first) was, when
it reached this router, screened against that stale tail and decided again — a changed
re-send delivered, while the index keeps the first record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.router.resend import CONFLICTING_RESEND
from services.router.topics import AUDIT, DEAD_LETTER, feed_topic
from tests.router.helpers import policy_source, traffic
from tests.router.test_log_first_kafka import read_all, router
from tests.router.test_loop_kafka import prepare_topics, publish
from tests.router.test_resend import delivered_signal
from tests.router.test_resend_log_first import changed
from tests.router.test_tail_rebalance import logged

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


def test_an_idle_router_sees_what_another_router_logged_since(
    broker_factory: Callable[..., EmbeddedBroker],
) -> None:
    made = broker_factory("tansu")
    made.start()
    settings = KafkaSettings.local(made.bootstrap)
    signal = delivered_signal()
    feeds, dead = asyncio.run(_scenario(settings, signal))
    assert feeds == []  # the changed content is never delivered
    assert [(d["code"], d["signal_id"]) for d in dead] == [(CONFLICTING_RESEND, signal["id"])]


async def _scenario(
    settings: KafkaSettings, signal: dict[str, object]
) -> tuple[list[bytes], list[dict[str, object]]]:
    policy = policy_source().current.policy
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    other = next(s for s in traffic(50) if s["id"] != signal["id"])
    loop = router(settings, "audit-first", None)
    await loop.start()
    task = asyncio.create_task(loop.run())
    producer = AIOKafkaProducer(**settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        # another router of the group logs a decision; this router's tail fetches it
        for message in logged(other):
            await (await producer.send(AUDIT, message, partition=0))
        await asyncio.sleep(1.5)
        # then it logs the signal's decision and dies before its feed send and commit
        for message in logged(signal):
            await (await producer.send(AUDIT, message, partition=0))
        await asyncio.sleep(1.5)
        # the partner re-sends the signal, changed; this router reads it
        await publish(settings, [orjson.dumps(changed(signal))])
        deadline = time.monotonic() + 60
        while loop.stats.signals < 1:
            assert time.monotonic() < deadline and not task.done(), "the router stalled"
            await asyncio.sleep(0.05)
    finally:
        await producer.stop()
        await loop.stop()
        await asyncio.wait_for(task, 15)
    topics = [*map(feed_topic, sorted(policy.recipients)), DEAD_LETTER]
    seen = await read_all(settings, topics, committed=True)
    feeds = [v for t, v in seen if t != DEAD_LETTER]
    return feeds, [orjson.loads(v) for t, v in seen if t == DEAD_LETTER]
