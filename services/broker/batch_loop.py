"""What every batched consume → write → produce loop of the hub shares: its Kafka clients and
a stop that lets the batch in hand finish (its writes, produces and offset commit) first.

The router (:mod:`services.router.loop`) and the stacking worker (:mod:`services.stacking.loop`)
subclass :class:`BatchLoop`; each ``run`` clears :attr:`_idle` while it works and sets it when
it returns, and checks :attr:`_stopping` between batches.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer


class BatchLoop:
    """Kafka clients plus the stop/idle handshake of a batched worker loop."""

    def __init__(self) -> None:
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Finish the batch in hand (its writes and commit), then close the clients."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
