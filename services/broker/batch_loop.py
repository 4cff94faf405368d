"""What every batched consume → write → produce loop of the hub shares: its Kafka clients and
a stop that lets the batch in hand finish (its writes, produces and offset commit) first.

The router, stacking, indexer and outcomes loops (:mod:`services.router.loop`,
:mod:`services.stacking.loop`, :mod:`services.indexer.loop`, :mod:`services.outcomes.loop`)
subclass :class:`BatchLoop`; each ``run`` clears :attr:`_idle` while it works and sets it when
it returns, and checks :attr:`_stopping` between batches.

A stop never hangs: closing each client is bounded by the stop's timeout, and a client that
has not closed by then is left behind with a warning. The worker stops (or, after a failed
batch, exits) either way, so its supervisor restarts it; a worker alive with its loop dead
would hold its partitions (its static membership) and route nothing. Closing an aiokafka
consumer waits for a group rejoin in flight, which Tansu answers only after half the session
timeout; the bound is well above that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

log = logging.getLogger(__name__)


class BatchLoop:
    """Kafka clients plus the stop/idle handshake of a batched worker loop."""

    def __init__(self) -> None:
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand (its writes and commit), then close the clients; each
        step waits at most ``timeout`` seconds."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._consumer is not None:
            await closed(self._consumer.stop(), "consumer", timeout)
        if self._producer is not None:
            await closed(self._producer.stop(), "producer", timeout)


async def closed(closing: Awaitable[None], client: str, timeout: float) -> bool:
    """Await ``closing`` for at most ``timeout`` seconds; whether it finished. One that did
    not is cancelled and left behind (not awaited: a close that swallows its cancellation
    would hang the caller again), with a warning naming the ``client``."""
    task = asyncio.ensure_future(closing)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if done:
        task.result()  # a close that failed says so
        return True
    task.cancel()
    log.warning(
        "the Kafka %s did not close within %.0f s; left behind so the worker can stop",
        client,
        timeout,
    )
    return False
