"""Every consumer of the hub asks the broker for short fetch waits (services/broker/fetching.py).

aiokafka's default ``fetch_max_wait_ms=500`` held each record up to half a second on Tansu
(p99 publish→feed ≈ 420 ms at 1,000 signals/s even for a bare passthrough). Each consumer is
built here with aiokafka's classes replaced by recorders, so the test sees the settings it
passes without a broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from services.broker import fetching
from services.broker.fetching import (
    BACKGROUND_WAIT_MS,
    FEED_PATH_WAIT_MS,
    SIDE_PATH_WAIT_MS,
    fetch_settings,
)
from services.broker.settings import KafkaSettings
from services.cli import subscribe
from services.coverage import worker as coverage_worker
from services.coverage.worker import CoverageWorker
from services.gateway import kafka as gateway_kafka
from services.gateway.kafka import KafkaFeedSource
from services.router import loop as router_loop
from services.router.loop import LoopConfig, RouterLoop
from services.stacking import loop as stacking_loop
from services.stacking.loop import StackingLoop, StackingLoopConfig

pytestmark = pytest.mark.timeout(30)

SETTINGS = KafkaSettings.local("127.0.0.1:9")
AIOKAFKA_DEFAULT_MS = 500
NOTHING: Any = None


def now() -> datetime:
    return datetime.now(UTC)


class Built(Exception):  # noqa: N818 - a signal from the recorder, not an error
    pass


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every AIOKafkaConsumer built while the test runs."""
    built: list[dict[str, Any]] = []

    class Consumer:
        def __init__(self, *topics: str, **kwargs: Any) -> None:
            built.append(kwargs)
            raise Built

    class Producer:
        def __init__(self, **kwargs: Any) -> None:
            pass

        async def start(self) -> None:
            pass

        async def stop(self) -> None:
            pass

    for module in (router_loop, stacking_loop, coverage_worker, gateway_kafka, subscribe):
        monkeypatch.setattr(module, "AIOKafkaConsumer", Consumer)
        if hasattr(module, "AIOKafkaProducer"):
            monkeypatch.setattr(module, "AIOKafkaProducer", Producer)
    monkeypatch.setattr(subscribe, "client_settings", lambda: SETTINGS)
    return built


def router() -> Coroutine[Any, Any, None]:
    loop = RouterLoop(SETTINGS, NOTHING, NOTHING, LoopConfig(topics=["signals.a"]), clock=now)
    return loop.start()


def stacking() -> Coroutine[Any, Any, None]:
    config = StackingLoopConfig(topics=["signals.a"])
    loop = StackingLoop(SETTINGS, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, config, clock=now)
    return loop.start()


def coverage() -> Coroutine[Any, Any, None]:
    return CoverageWorker(SETTINGS, NOTHING, NOTHING, ["signals.a"], now).run(asyncio.Event())


async def gateway() -> None:
    await KafkaFeedSource(SETTINGS).read("feed.a", {}, limit=10, wait_s=5.0)


def subscriber() -> Coroutine[Any, Any, None]:
    return subscribe._subscribe("riec-nh", from_beginning=False, follow=False, idle=1.0)


@pytest.mark.parametrize(
    ("build", "wait_ms"),
    [
        (router, FEED_PATH_WAIT_MS),
        (stacking, SIDE_PATH_WAIT_MS),
        (subscriber, FEED_PATH_WAIT_MS),
        (gateway, SIDE_PATH_WAIT_MS),
        (coverage, BACKGROUND_WAIT_MS),
    ],
    ids=["router", "stacking", "subscribe", "gateway-feed-read", "coverage"],
)
def test_each_consumer_waits_its_short_fetch_wait_not_aiokafkas_half_second(
    consumers: list[dict[str, Any]],
    build: Callable[[], Coroutine[Any, Any, None]],
    wait_ms: int,
) -> None:
    with pytest.raises(Built):
        asyncio.run(build())
    [kwargs] = consumers
    assert kwargs["fetch_max_wait_ms"] == wait_ms
    assert kwargs["fetch_max_wait_ms"] < AIOKAFKA_DEFAULT_MS / 4


def test_the_feed_path_wait_is_the_shortest_and_a_spinning_zero_is_refused() -> None:
    assert FEED_PATH_WAIT_MS <= SIDE_PATH_WAIT_MS <= BACKGROUND_WAIT_MS
    assert fetch_settings() == {"fetch_max_wait_ms": fetching.FEED_PATH_WAIT_MS}
    with pytest.raises(ValueError, match="at least 1 ms"):
        fetch_settings(0)
    assert fetch_settings(25)["fetch_max_wait_ms"] == 25
