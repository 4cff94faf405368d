"""Simulated partners for `schakel up --demo`: realistic Noord-Holland traffic, paced live."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from datetime import datetime, timedelta
from typing import Any

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
    few months of partner reports while the demo lasts minutes. When they catch up with the
    clock, another 60 days begin (with fresh ids): the hub refuses times ahead of its clock.
    What came of the signals — police findings weeks later, checks that found nothing, the
    OM's approvals and the measures — is published at its own time among them.
    """
    counts = counts if counts is not None else Counter()
    producer = AIOKafkaProducer(linger_ms=5, acks="all", **kafka.client_kwargs_aiokafka())
    await producer.start()
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    try:
        for partner, envelope in _traffic(seed, clock, stop):
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


def _traffic(
    seed: int, clock: Callable[[], datetime], stop: asyncio.Event, *, per_day: float = 2_000
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Demo signals over the last 60 days, starting over (new seed) once they reach the clock."""
    for round_ in itertools.count():
        start = clock() - timedelta(days=60)
        for partner, envelope in stream(
            seed + round_, start, signals_per_day=per_day, outcomes=True
        ):
            if stop.is_set():
                return
            if datetime.fromisoformat(str(envelope["time"])) > clock():
                break
            yield partner, envelope
