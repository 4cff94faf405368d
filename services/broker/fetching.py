"""How long the hub's consumers let a fetch wait at the broker: their latency settings.

aiokafka asks the broker to hold an empty fetch for ``fetch_max_wait_ms`` (default 500 ms)
until data arrives. Tansu 0.6.0 holds it that long even when data arrives meanwhile, so with
the default a record waits up to 500 ms before its consumer sees it: p99 publish→feed was
≈ 420 ms at 1,000 signals/s for a bare passthrough (docs/performance.md). A shorter wait
costs idle CPU instead: one empty fetch round trip per wait per consumer. Measured on Tansu
with one idle consumer (2 shared cores, loaded; client + broker CPU):

=========  ==============  ===========================  ============================
wait (ms)  empty fetches/s  idle CPU, client + broker    one record's delay, p50/max
=========  ==============  ===========================  ============================
500        2                0.6 % + 0.4 %                217 / 421 ms
100        ≈ 10             0.8 % + 1.0 %                16 / 48 ms
25         ≈ 36             2.1 % + 2.9 %                6 / 24 ms
10         ≈ 72             3.1 % + 3.3 %                5 / 26 ms (one outlier 158)
=========  ==============  ===========================  ============================

noida-db 0.2.3 answers an empty fetch at once whatever the wait (and ``fetch_min_bytes``), so
on noida every idle consumer polls in a tight loop — 400-1,000 empty fetches/s, 15-25 % of a
core — and its latency is low with any setting; these settings change nothing there.

So: the consumers on the publish→feed path wait :data:`FEED_PATH_WAIT_MS`; a gateway read,
which waits for one HTTP client, :data:`LONG_POLL_WAIT_MS`; the coverage worker, which only
counts and is on no one's latency path, :data:`BACKGROUND_WAIT_MS`.
"""

from __future__ import annotations

FEED_PATH_WAIT_MS = 10
"""Router, stacking worker and ``schakel subscribe``: each adds its wait to publish→feed."""

LONG_POLL_WAIT_MS = 25
"""A gateway feed read: one short-lived consumer per waiting HTTP client, so half the idle cost
of :data:`FEED_PATH_WAIT_MS` per client for at most 25 ms more delay."""

BACKGROUND_WAIT_MS = 100
"""The coverage worker: counts for the barrier view, nobody waits on it."""


def fetch_settings(wait_ms: int = FEED_PATH_WAIT_MS) -> dict[str, int]:
    """aiokafka consumer keyword arguments for a fetch that waits at most ``wait_ms``."""
    if wait_ms < 1:
        raise ValueError("a fetch must wait at least 1 ms (0 makes an idle consumer spin)")
    return {"fetch_max_wait_ms": wait_ms}
