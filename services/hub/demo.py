"""Simulated partners for `schakel up --demo`: realistic Noord-Holland traffic, paced live."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

import orjson
from aiokafka import AIOKafkaProducer

from services.broker.settings import KafkaSettings
from services.demo import stream
from services.router.topics import signals_topic


async def publish_demo(
    kafka: KafkaSettings,
    partners: Collection[str],
    stop: asyncio.Event,
    *,
    rate: float,
    clock: Callable[[], datetime],
    seed: int = 2026,
    counts: Counter[str] | None = None,
) -> Counter[str]:
    """Publish demo signals at ``rate`` per second until ``stop`` is set.

    Signal times run over the last 60 days (about 2,000 a day), so the traffic looks like a
    few months of partner reports while the demo lasts minutes.
    """
    counts = counts if counts is not None else Counter()
    producer = AIOKafkaProducer(linger_ms=5, acks="all", **kafka.client_kwargs_aiokafka())
    await producer.start()
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        for partner, envelope in stream(seed, clock() - timedelta(days=60), signals_per_day=2_000):
            if stop.is_set():
                break
            if partner not in partners:
                continue
            await producer.send(signals_topic(partner), orjson.dumps(envelope))
            counts[partner] += 1
            next_at += interval
            delay = next_at - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        await producer.stop()
    return counts
