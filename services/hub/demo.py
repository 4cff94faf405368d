"""Simulated partners for `schakel up --demo`: realistic Noord-Holland traffic, paced live."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from services.broker.settings import KafkaSettings
from services.demo import stream
from services.router.topics import signals_topic

log = logging.getLogger("schakel.hub")


DEMO_POSITION_FILE = "demo.json"
"""In the state directory: the round of demo traffic the next run starts with."""
STOP_WAIT_S = 3.0
"""How long a stop waits for the demo's last sends before it lets them go."""
REPORT_EVERY_S = 10.0
"""Failed sends are logged at most once per this many seconds (with their count)."""


def next_round(position: Path | None) -> int:
    """The round of traffic (seed offset) a new run starts with: one no earlier run used, so
    a restarted demo never re-sends the signal ids of the last one (0 without a file)."""
    if position is None:
        return 0
    try:
        value = orjson.loads(position.read_bytes())["next_round"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return 0
    return value if isinstance(value, int) and value >= 0 else 0


def _save_round(position: Path | None, round_: int) -> None:
    if position is None:
        return
    temporary = position.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps({"next_round": round_ + 1}))
    temporary.replace(position)


@dataclass
class SendFailures:
    """Sends the broker did not acknowledge: counted, and logged once per interval (never a
    "Future exception was never retrieved" per message)."""

    failed: int = 0
    unreported: int = 0
    last_reported: float = field(default=float("-inf"))
    last_error: str = ""

    def watch(self, future: asyncio.Future[Any]) -> None:
        future.add_done_callback(self._done)

    def _done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        error = future.exception()  # retrieved: asyncio stays quiet
        if error is None:
            return
        self.failed += 1
        self.unreported += 1
        self.last_error = error.__class__.__name__
        now = time.monotonic()
        if now - self.last_reported >= REPORT_EVERY_S:
            log.warning(
                "demo partners: %d signal(s) not acknowledged by the broker (%s); they are "
                "not re-sent (demo traffic only)",
                self.unreported,
                self.last_error,
            )
            self.unreported = 0
            self.last_reported = now


async def publish_demo(
    kafka: KafkaSettings,
    partners: Collection[str],
    stop: asyncio.Event,
    *,
    rate: float,
    clock: Callable[[], datetime],
    seed: int = 2026,
    counts: Counter[str] | None = None,
    position: Path | None = None,
    failures: SendFailures | None = None,
) -> Counter[str]:
    """Publish demo signals at ``rate`` per second until ``stop`` is set.

    Signal times run over the last 60 days (about 2,000 a day), so the traffic looks like a
    few months of partner reports while the demo lasts minutes. When they catch up with the
    clock, another 60 days begin (with fresh ids): the hub refuses times ahead of its clock.
    What came of the signals — police findings weeks later, checks that found nothing, the
    OM's approvals and the measures — is published at its own time among them.

    With ``position`` (a file in the state directory) a new run continues with the next
    round, so its ids are fresh: a restarted demo does not re-send the last run's signals.
    A send the broker does not acknowledge is counted in ``failures`` and logged once per
    interval; a stop waits at most :data:`STOP_WAIT_S` for the last sends.
    """
    counts = counts if counts is not None else Counter()
    failures = failures if failures is not None else SendFailures()
    producer = AIOKafkaProducer(linger_ms=5, acks="all", **kafka.client_kwargs_aiokafka())
    await producer.start()
    interval = 1.0 / rate
    loop = asyncio.get_running_loop()
    next_at = loop.time()
    traffic = _traffic(
        seed,
        clock,
        stop,
        first_round=next_round(position),
        on_round=lambda round_: _save_round(position, round_),
    )
    try:
        for partner, envelope in traffic:
            if partner not in partners:
                continue
            sent = await _send(producer, signals_topic(partner), orjson.dumps(envelope), stop)
            if sent is None:
                break
            failures.watch(sent)
            counts[partner] += 1
            next_at += interval
            delay = next_at - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
    finally:
        try:
            await asyncio.wait_for(producer.stop(), STOP_WAIT_S)
        except TimeoutError:
            log.warning("demo partners: stopped without waiting for their last sends")
    return counts


async def _send(
    producer: AIOKafkaProducer, topic: str, value: bytes, stop: asyncio.Event
) -> asyncio.Future[Any] | None:
    """Queue one message; None when ``stop`` was set while the producer's buffer was full
    (a broker that is away must not hold up Ctrl-C)."""
    queued = asyncio.ensure_future(producer.send(topic, value))
    stopped = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({queued, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if queued in done:
        stopped.cancel()
        return queued.result()  # type: ignore[no-any-return]
    queued.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await queued
    return None


def _traffic(
    seed: int,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
    *,
    per_day: float = 2_000,
    first_round: int = 0,
    on_round: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Demo signals over the last 60 days, starting over (new seed) once they reach the clock;
    ``on_round`` hears of each round as it begins (to persist the position)."""
    for round_ in itertools.count(first_round):
        if on_round is not None:
            on_round(round_)
        start = clock() - timedelta(days=60)
        for partner, envelope in stream(
            seed + round_, start, signals_per_day=per_day, outcomes=True
        ):
            if stop.is_set():
                return
            if datetime.fromisoformat(str(envelope["time"])) > clock():
                break
            yield partner, envelope
