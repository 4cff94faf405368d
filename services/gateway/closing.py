"""Telling the gateway's open event streams that the server is stopping.

An event stream lasts minutes; a server that stops cancels what is still running once its
grace period ends, which ends a stream with a traceback. :class:`Closing` lets the stream end
itself instead — it commits what it sent and answers its last byte — as soon as a stop is
asked for, from the thread that asks (the hub's main thread, or uvicorn's signal handler).
"""

from __future__ import annotations

import asyncio
import threading


class Closing:
    """Set once, from any thread; awaited in the event loop that serves the gateway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Ask every stream to end (idempotent; safe from any thread)."""
        with self._lock:
            self._closed = True
            loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def wait(self) -> None:
        """Return once :meth:`close` was called."""
        with self._lock:
            if self._event is None:
                self._loop = asyncio.get_running_loop()
                self._event = asyncio.Event()
            event = self._event
            if self._closed:
                event.set()
        await event.wait()
