"""How long the hub's consumers let a fetch wait at the broker: their latency settings.

aiokafka asks the broker to hold an empty fetch for ``fetch_max_wait_ms`` (default 500 ms)
until data arrives. Tansu 0.6.0 holds it that long even when data arrives meanwhile, so with
the default a record waited up to 500 ms for each consumer on its way: p99 publish→feed was
≈ 360-420 ms at 1,000 signals/s for a bare passthrough (docs/performance.md). A shorter wait
costs idle CPU instead: one empty fetch round trip per wait per consumer, in the client and in
the broker. Measured with ``bench/_fetch_wait.py`` (one idle consumer; 2 shared cores, load
average 6-8):

=========  ========================================  ===================================
wait (ms)  Tansu: idle CPU client + broker, delay     noida: idle CPU client + broker,
           p50 / p99 of a single record               delay p50 / p99
=========  ========================================  ===================================
500        0.4 % + 0.4 %,  215 / 224 ms              39 % + 2.3 %,  1.1 / 20 ms
100        0.7 % + 1.2 %,   15 /  29 ms              35 % + 2.5 %,  1.5 / 17 ms
25         2.6 % + 3.5 %,  6.0 /  20 ms              38 % + 3.0 %,  0.9 /  7 ms
10         4.9 % + 5.0 %,  4.4 /  13 ms              39 % + 3.4 %,  1.2 / 59 ms
=========  ========================================  ===================================

noida-db 0.2.3 answers an empty fetch at once whatever the wait (and ``fetch_min_bytes``), so
on noida every idle consumer polls in a tight loop, 400-1,000 empty fetches a second and about
a third of a core, and its delay is short with any setting; these settings change nothing there.
:func:`hold_empty_fetches` makes the client wait instead: a fetch that brought nothing back
sooner than ``fetch_max_wait_ms`` is held for the rest of that time before the next one is sent
(as a broker that honours the wait would hold it, but without its early answer when a record
arrives: a record can wait up to the wait more, as on Tansu). On a broker that honours the wait
an empty fetch already took that long, so nothing changes there.

So each consumer waits as long as the path it is on allows: :data:`FEED_PATH_WAIT_MS` on the
publish→feed path, :data:`SIDE_PATH_WAIT_MS` for the stacking worker and a gateway feed read,
:data:`BACKGROUND_WAIT_MS` for the coverage, outcomes and RIEC feed readers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

FEED_PATH_WAIT_MS = 10
"""The router and ``schakel subscribe``: each adds up to its wait to publish→feed."""

SIDE_PATH_WAIT_MS = 25
"""The stacking worker (its alerts are signals again, routed after it) and a gateway feed read
(one short-lived consumer per waiting HTTP client): less idle cost per consumer, for at most
25 ms more delay."""

BACKGROUND_WAIT_MS = 100
"""The coverage worker: counts for the barrier view, nobody waits on it."""


def fetch_settings(wait_ms: int = FEED_PATH_WAIT_MS) -> dict[str, int]:
    """aiokafka consumer keyword arguments for a fetch that waits at most ``wait_ms``."""
    if wait_ms < 1:
        raise ValueError("a fetch must wait at least 1 ms (0 makes an idle consumer spin)")
    return {"fetch_max_wait_ms": wait_ms}


def hold_empty_fetches(consumer: Any, wait_ms: int) -> bool:
    """Hold every fetch of the started aiokafka ``consumer`` that returned no record sooner
    than ``wait_ms`` for the rest of that time (see the module docstring: noida answers empty
    fetches at once, and an idle consumer would otherwise spin). Returns whether it could: it
    wraps aiokafka's fetcher (``Fetcher._proc_fetch_request``, which returns whether the fetch
    brought records), and an aiokafka without it is left as it is, with a warning.

    A fetch cancelled while in flight is never held: aiokafka cancels its fetches at a new
    assignment and awaits them, and swallows a cancellation of its fetcher that arrives
    meanwhile. A cancelled fetch that still waited out its hold kept the fetcher there long
    enough for ``consumer.stop()`` (waiting for a rejoin in flight, then cancelling the fetcher)
    to be swallowed: the fetcher went on to wait for committed offsets nobody fetched any more
    and ``stop()`` never returned (tests/broker/test_fetch_hold.py)."""
    if wait_ms < 1:
        raise ValueError("a fetch must wait at least 1 ms (0 makes an idle consumer spin)")
    fetcher = getattr(consumer, "_fetcher", None)
    fetch: Callable[..., Awaitable[Any]] | None = getattr(fetcher, "_proc_fetch_request", None)
    if fetcher is None or fetch is None:
        log.warning(
            "this aiokafka has no fetcher to hold empty fetches in (start the consumer first): "
            "on a broker that answers empty fetches at once the consumer polls in a tight loop"
        )
        return False
    wait_s = wait_ms / 1000

    async def held(*args: Any) -> Any:
        started = time.monotonic()
        brought = await fetch(*args)
        rest = wait_s - (time.monotonic() - started)
        task = asyncio.current_task()
        if brought or rest <= 0 or (task is not None and task.cancelling()):
            # a fetch cancelled in flight ends now, as aiokafka's own does: never held
            return brought
        try:
            await asyncio.sleep(rest)
        except asyncio.CancelledError:
            # aiokafka cancels fetches in flight at close or a new assignment and awaits
            # them; its own fetch then returns "nothing" rather than raising: so does this
            return brought
        return brought

    fetcher._proc_fetch_request = held
    return True
