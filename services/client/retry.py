"""Retrying requests: exponential backoff with full jitter, honouring ``Retry-After``.

Retried: connection errors and timeouts (no answer), 429, 502, 503 and 504. Every other answer
is returned to the caller at once. The n-th retry waits a random time between 0 and
``min(max_delay, base_delay * 2**n)`` ("full jitter", so many clients that failed together do
not retry together), but never less than the server's ``Retry-After``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.client.errors import ClientError

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    """Tries in all (the first one included)."""
    base_delay: float = 0.2
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2**retry)
        jittered = self.rng.uniform(0, ceiling)
        return max(jittered, min(retry_after or 0.0, self.max_delay))


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def send(
    http: httpx.Client, policy: RetryPolicy, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send one request, retried as the module docstring says; the last answer, or
    :class:`ClientError` if there never was one."""
    failure = "no attempt made"
    for attempt in range(policy.attempts):
        wait_hint: float | None = None
        try:
            response = http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            failure = f"{exc.__class__.__name__}"
        else:
            if response.status_code not in RETRY_STATUSES or attempt == policy.attempts - 1:
                return response
            failure = f"HTTP {response.status_code}"
            wait_hint = retry_after(response)
        if attempt < policy.attempts - 1:
            policy.sleep(policy.delay(attempt, wait_hint))
    raise ClientError(f"{method} {url} failed {policy.attempts} times (last: {failure})")
