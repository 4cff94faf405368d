"""The gateway's ``/healthz`` and ``/readyz``: live while it answers, ready while the broker
answers and its store is open.

:class:`BrokerWatch` asks the broker for its metadata every few seconds from a task of the
app's event loop (:func:`watching` runs it for the app's lifetime) and remembers when it last
answered; the readiness check reads that, so a probe never waits for Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI
from sqlalchemy import Engine

from services.core.errors import SchakelError
from services.gateway.app import Lifespan
from services.metrics.health import Health
from services.metrics.wiring import database_check

log = logging.getLogger("schakel.gateway")


class Pingable(Protocol):
    async def ping(self) -> None:
        """Return when the broker answered a metadata request (raise if it did not)."""
        ...


class BrokerWatch:
    """When the broker last answered, kept by :meth:`run`; :meth:`check` is the probe."""

    def __init__(
        self,
        broker: Pingable,
        *,
        every_s: float = 5.0,
        stale_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._broker = broker
        self._every = every_s
        self._stale = stale_after_s
        self._clock = clock
        self.last_ok = 0.0

    async def ping_once(self) -> bool:
        try:
            await self._broker.ping()
        except (SchakelError, OSError, TimeoutError) as exc:
            log.warning("the broker did not answer the gateway (%s)", exc.__class__.__name__)
            return False
        self.last_ok = self._clock()
        return True

    async def run(self) -> None:
        while True:
            await self.ping_once()
            await asyncio.sleep(self._every)

    def check(self) -> str | None:
        if self.last_ok == 0.0:
            return "broker has not answered yet"
        age = self._clock() - self.last_ok
        if age > self._stale:
            return f"broker last answered {age:.0f} s ago (limit {self._stale:.0f} s)"
        return None


def gateway_health(engine: Engine, watch: BrokerWatch) -> Health:
    """Live: no checks (an answer is proof enough). Ready: broker answered lately, store open."""
    return Health(liveness={}, readiness={"broker": watch.check, "store": database_check(engine)})


def watching(watch: BrokerWatch, inner: Lifespan | None = None) -> Lifespan:
    """A lifespan running ``watch`` around ``inner`` (which starts the producer first)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if inner is not None:
                await stack.enter_async_context(inner(app))
            task = asyncio.create_task(watch.run())
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    return lifespan
