"""A batch loop's stop is bounded (services/broker/batch_loop.py): a Kafka client that does not
close never keeps a worker from stopping, so a worker whose loop failed exits and is restarted
instead of staying alive with its loop dead (the chaos soak's hang, tests/soak)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest

from services.broker.batch_loop import BatchLoop, closed

pytestmark = pytest.mark.timeout(20)


class Client:
    """An aiokafka client as far as the stop sees it; ``hangs``: its stop() does not return
    and swallows the first cancellation (aiokafka's consumer, stopped during a rejoin, did)."""

    def __init__(self, hangs: bool = False, fails: bool = False) -> None:
        self.hangs = hangs
        self.fails = fails
        self.stopped = False

    async def stop(self) -> None:
        if self.fails:
            raise RuntimeError("close failed")
        if self.hangs:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(3600)
            await asyncio.sleep(3600)  # ended by asyncio.run's own cancel at the end
        self.stopped = True


def stopped_in(loop: BatchLoop, timeout: float) -> float | None:
    """Seconds ``loop.stop(timeout)`` took, None if it had not returned after 5 s."""

    async def go() -> float | None:
        started = time.monotonic()
        stopping = asyncio.ensure_future(loop.stop(timeout))
        done, _ = await asyncio.wait({stopping}, timeout=5)
        took = time.monotonic() - started
        for _ in range(10):  # end a stop that hung (each cancel may be swallowed once)
            if stopping.done():
                break
            stopping.cancel()
            await asyncio.sleep(0.01)
        return took if done else None

    return asyncio.run(go())


def with_clients(consumer: Client, producer: Client) -> BatchLoop:
    loop = BatchLoop()
    fake: Any = consumer
    loop._consumer = fake
    fake = producer
    loop._producer = fake
    return loop


def test_a_consumer_that_never_closes_does_not_keep_the_loop_from_stopping(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer, producer = Client(hangs=True), Client()
    loop = with_clients(consumer, producer)
    with caplog.at_level(logging.WARNING):
        took = stopped_in(loop, 0.5)
    assert took is not None, "the loop's stop hung with its consumer"
    assert took < 3
    assert producer.stopped  # the producer is still closed after the consumer gave up
    assert "consumer did not close within" in caplog.text


def test_clients_that_close_are_awaited_and_a_failed_close_says_so() -> None:
    consumer, producer = Client(), Client()
    assert stopped_in(with_clients(consumer, producer), 5) is not None
    assert consumer.stopped and producer.stopped

    async def failing() -> bool:
        return await closed(Client(fails=True).stop(), "producer", 5)

    with pytest.raises(RuntimeError, match="close failed"):
        asyncio.run(failing())
