"""Per-principal rate limits: a token bucket each, refilled continuously.

``rate`` requests per second on average, up to ``burst`` at once. A refused request learns
how many seconds until it would be allowed (the ``Retry-After`` of the 429 answer). The clock
is passed in (monotonic seconds), so tests control time.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """One token bucket per key; at most ``max_keys`` buckets are kept (oldest dropped)."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float], *, max_keys: int = 10_000
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 requests/s and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, cost: float = 1.0) -> float | None:
        """Take ``cost`` tokens for ``key``: None if allowed, else seconds to wait."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        self._buckets[key] = bucket  # most recently used last
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return None
        return (cost - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` takes whole seconds; round up so the retry is allowed."""
    return str(max(1, math.ceil(seconds)))
