"""An idle consumer waits between empty fetches, even on a broker that answers them at once
(services/broker/fetching.py: :func:`hold_empty_fetches`).

noida-db 0.2.3 answers an empty fetch immediately whatever ``fetch_max_wait_ms`` says: an idle
aiokafka consumer sent ≈ 3,000 fetches a second there and used two thirds of a core of its own
process doing so (the audit indexer beside the router spent more CPU polling than indexing).
The unit tests use a stand-in fetcher; the broker tests count the fetches of the router's, the
indexer's and the stacking worker's own consumers, idle on a real broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from services.broker.fetching import fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.indexer.loop import IndexerConfig, IndexerLoop
from services.router.loop import LoopConfig, RouterLoop
from services.stacking.loop import StackingLoop, StackingLoopConfig

pytestmark = pytest.mark.timeout(60)

WAIT_MS = 40
NOTHING: Any = None


class Fetcher:
    """aiokafka's fetcher as far as the hold sees it: a fetch answered at once."""

    def __init__(self, brings: bool) -> None:
        self.brings = brings
        self.calls = 0

    async def _proc_fetch_request(self, *args: object) -> bool:
        self.calls += 1
        return self.brings


class Consumer:
    def __init__(self, fetcher: object) -> None:
        self._fetcher = fetcher


def timed(fetch: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    async def go() -> tuple[Any, float]:
        started = time.monotonic()
        result = await fetch()
        return result, time.monotonic() - started

    return asyncio.run(go())


def test_an_empty_fetch_answered_at_once_is_held_for_the_wait() -> None:
    fetcher = Fetcher(brings=False)
    assert hold_empty_fetches(Consumer(fetcher), WAIT_MS)
    brought, took = timed(lambda: fetcher._proc_fetch_request("assignment", 0, "request"))
    assert brought is False
    assert fetcher.calls == 1  # the real fetch ran, with its arguments
    assert took >= WAIT_MS / 1000 * 0.9


def test_a_fetch_that_brought_records_is_not_held() -> None:
    fetcher = Fetcher(brings=True)
    hold_empty_fetches(Consumer(fetcher), 2_000)
    brought, took = timed(lambda: fetcher._proc_fetch_request("assignment", 0, "request"))
    assert brought is True
    assert took < 1.0


def test_a_held_fetch_cancelled_at_close_ends_quietly_as_aiokafkas_own_does() -> None:
    """aiokafka's close() cancels the fetches in flight and awaits them: a CancelledError out
    of a held fetch would make consumer.stop() raise."""
    fetcher = Fetcher(brings=False)
    hold_empty_fetches(Consumer(fetcher), 10_000)

    async def go() -> object:
        task = asyncio.create_task(fetcher._proc_fetch_request())
        await asyncio.sleep(0.05)
        task.cancel()
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(go()) is False


class InFlight:
    """aiokafka's fetcher as far as the hold sees it: a fetch the broker holds until it is
    cancelled, which then returns "nothing" (aiokafka's ``_proc_fetch_request`` does)."""

    async def _proc_fetch_request(self, *args: object) -> bool:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return False
        return True  # pragma: no cover - never set


def test_a_fetch_cancelled_in_flight_is_not_held_for_the_rest_of_the_wait() -> None:
    """aiokafka awaits the fetches it cancels (at a new assignment and at close) and swallows
    its own cancellation meanwhile: a cancelled fetch held for the rest of the wait kept the
    fetcher there, and ``consumer.stop()`` hung (the broker test below)."""
    fetcher = InFlight()
    hold_empty_fetches(Consumer(fetcher), 10_000)

    async def go() -> tuple[object, float]:
        task = asyncio.create_task(fetcher._proc_fetch_request())
        await asyncio.sleep(0.05)
        task.cancel()
        started = time.monotonic()
        done, _ = await asyncio.wait({task}, timeout=5)
        took = time.monotonic() - started
        task.cancel()  # the old hold swallowed the first cancel: end it either way
        return (task.result() if done else "still held"), took

    brought, took = asyncio.run(go())
    assert brought is False
    assert took < 1.0


def test_without_a_fetcher_nothing_is_changed_and_it_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        assert not hold_empty_fetches(Consumer(None), WAIT_MS)
    assert "tight loop" in caplog.text
    with pytest.raises(ValueError, match="at least 1 ms"):
        hold_empty_fetches(Consumer(Fetcher(brings=False)), 0)


async def fetches_per_second(consumer: Any, seconds: float) -> float:
    """Fetch requests ``consumer`` sends per second while idle (its partitions at their end)."""
    fetcher = consumer._fetcher
    fetch = fetcher._proc_fetch_request
    count = 0

    async def counted(*args: Any) -> Any:
        nonlocal count
        count += 1
        return await fetch(*args)

    fetcher._proc_fetch_request = counted
    deadline = time.monotonic() + 30
    while not consumer.assignment() and time.monotonic() < deadline:
        await consumer.getmany(timeout_ms=100)
    assert consumer.assignment(), "no partitions assigned"
    await consumer.getmany(timeout_ms=300)  # past the first fetches from the start
    count = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert not await consumer.getmany(timeout_ms=100)
    return count / seconds


def most_fetches_per_second(wait_ms: int) -> float:
    """One fetch per wait, with room for scheduling; noida without the hold: ≈ 3,000/s."""
    return 1000 / wait_ms * 1.5 + 10


@pytest.mark.kafka
def test_the_routers_idle_consumer_waits_between_empty_fetches(
    kafka_settings: KafkaSettings,
    topic_admin: KafkaTopicAdmin,
    unique_topic: Callable[[str], str],
) -> None:
    topic = unique_topic("signals.idle")
    topic_admin.ensure_topics({topic: 2})
    config = LoopConfig(topics=[topic], group_id=unique_topic("g"), audit_path="audit-first")

    async def go() -> float:
        loop = RouterLoop(kafka_settings, NOTHING, NOTHING, config, clock=NOTHING)
        await loop.start()
        try:
            return await fetches_per_second(loop._consumer, 2.0)
        finally:
            await loop.stop()

    assert asyncio.run(go()) <= most_fetches_per_second(config.fetch_max_wait_ms)


@pytest.mark.kafka
def test_the_indexers_idle_consumer_waits_between_empty_fetches(
    kafka_settings: KafkaSettings,
    topic_admin: KafkaTopicAdmin,
    unique_topic: Callable[[str], str],
) -> None:
    topic = unique_topic("audit")
    topic_admin.ensure_topics({topic: 1})
    config = IndexerConfig(topic=topic, group_id=unique_topic("g"))

    async def go() -> float:
        indexer = IndexerLoop(kafka_settings, NOTHING, config)
        await indexer.start()
        try:
            return await fetches_per_second(indexer.consumer, 2.0)
        finally:
            await indexer.stop()

    assert asyncio.run(go()) <= most_fetches_per_second(config.fetch_max_wait_ms)


@pytest.mark.kafka
def test_the_stacking_workers_idle_consumer_waits_between_empty_fetches(
    kafka_settings: KafkaSettings,
    topic_admin: KafkaTopicAdmin,
    unique_topic: Callable[[str], str],
) -> None:
    """The stacking worker runs beside the router on the same cores."""
    topic = unique_topic("signals.idle")
    topic_admin.ensure_topics({topic: 2})
    config = StackingLoopConfig(topics=[topic], group_id=unique_topic("g"))

    async def go() -> float:
        loop = StackingLoop(
            kafka_settings, NOTHING, NOTHING, NOTHING, NOTHING, NOTHING, config, clock=NOTHING
        )
        await loop.start()
        try:
            return await fetches_per_second(loop._consumer, 2.0)
        finally:
            await loop.stop()

    assert asyncio.run(go()) <= most_fetches_per_second(config.fetch_max_wait_ms)


def test_every_consumer_the_hub_starts_holds_its_empty_fetches() -> None:
    """Every module that makes an aiokafka consumer which polls (the router, indexer, stacking,
    outcomes, coverage and RIEC workers, ``schakel subscribe`` and the gateway's feed reads)
    holds its empty fetches, so none of them spins on noida. A consumer that only commits (the
    gateway's acknowledgement) never fetches and is left out by name."""
    import ast
    from pathlib import Path

    services = Path(__file__).resolve().parents[2] / "services"
    commit_only = {"services/gateway/kafka.py": 1}  # acknowledge(): assign + commit, no fetch
    spinning = []
    for path in sorted(services.rglob("*.py")):
        tree = ast.parse(path.read_text())
        made = held = 0
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                made += node.func.id == "AIOKafkaConsumer"
                held += node.func.id == "hold_empty_fetches"
        name = str(path.relative_to(services.parent))
        if made - commit_only.get(name, 0) > held:
            spinning.append(f"{name}: {made} consumers, {held} held")
    assert spinning == []


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_a_held_consumer_stopped_while_its_group_rebalances_stops(
    kafka_settings: KafkaSettings,
    topic_admin: KafkaTopicAdmin,
    unique_topic: Callable[[str], str],
) -> None:
    """The soak's hang: a router whose audit write failed while its group rebalanced never
    exited. ``consumer.stop()`` waits for the rejoin in flight; the new assignment makes
    aiokafka's fetcher cancel its fetches in flight and await them, and a cancellation of the
    fetcher itself arriving meanwhile is swallowed there. A held fetch that, once cancelled,
    still waited out the rest of its hold kept the fetcher in that spot for up to the wait:
    ``stop()`` cancelled it there, and the fetcher went on to wait for committed offsets that
    nobody fetches any more, so ``stop()`` never returned (the worker stayed alive, its loop
    dead; on Tansu its group stalled with it). A wait of 500 ms makes the race certain on a
    broker that holds empty fetches (Tansu); the router's 10 ms made it likely under load."""
    topic = unique_topic("signals.rebalancing")
    topic_admin.ensure_topics({topic: 4})
    group = unique_topic("g")
    wait_ms = 500

    def consumer(instance: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            group_id=group,
            group_instance_id=instance,
            enable_auto_commit=False,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=500,
            **fetch_settings(wait_ms),
            **kafka_settings.client_kwargs_aiokafka(),
        )

    async def go() -> float:
        first = consumer("first")
        await first.start()  # returns once it has its partitions
        hold_empty_fetches(first, wait_ms)
        rejoining = asyncio.Event()
        subscription = first._subscription
        begin = subscription.begin_reassignment

        def noted() -> None:  # the coordinator prepares to rejoin: a JoinGroup follows
            rejoining.set()
            begin()

        subscription.begin_reassignment = noted
        second = consumer("second")
        joining = asyncio.create_task(second.start())
        try:
            await asyncio.wait_for(rejoining.wait(), 30)
            started = time.monotonic()
            await asyncio.wait_for(first.stop(), 40)
            return time.monotonic() - started
        finally:
            await asyncio.wait_for(joining, 45)
            await second.stop()

    assert asyncio.run(go()) < 30  # the rejoin in flight (Tansu answers a join after 5 s)
