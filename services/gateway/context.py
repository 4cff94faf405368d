"""What the gateway app is built from: its settings and its dependencies, passed in."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from fastapi import Request

from services.core.schema_registry import SchemaRegistry
from services.gateway.accepted import AcceptedIds
from services.gateway.closing import Closing
from services.gateway.ingest import Ingest
from services.gateway.ports import FeedSource, Producer
from services.gateway.ratelimit import RateLimiter
from services.gateway.signatures import KeySource
from services.gateway.tokens import TokenStore
from services.metrics.gateway import GatewayMetrics
from services.metrics.health import Health


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class GatewaySettings:
    """Limits of the gateway; the defaults suit a hub on one machine."""

    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body read; larger ones get 413 unread."""
    max_batch: int = 500
    """Most signals in one request."""
    rate: float = 20.0
    """Requests per second per partner or recipient, on average ..."""
    burst: int = 40
    """... and at most this many at once."""
    feed_limit: int = 1000
    """Most feed messages per page."""
    feed_max_wait_s: float = 30.0
    """Longest long-poll of ``GET /v1/feed``."""
    stream_max_s: float = 300.0
    """How long one server-sent-events response lasts; the client reconnects with
    ``Last-Event-ID`` to go on."""


@dataclass
class Gateway:
    """The gateway's dependencies; one per app."""

    tokens: TokenStore
    accepted: AcceptedIds
    producer: Producer
    feed: FeedSource
    registry: SchemaRegistry
    keys: KeySource | None
    """The partners' registered keys for the early signature check
    (:mod:`services.gateway.signatures`); ``None`` leaves signatures to the router alone."""
    settings: GatewaySettings = field(default_factory=GatewaySettings)
    monotonic: Callable[[], float] = time.monotonic
    clock: Callable[[], datetime] = utc_now
    """Wall-clock time: the day whose covenants and keys are in force."""
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    health: Health = field(default_factory=Health)
    """``/healthz`` and ``/readyz`` (:func:`services.gateway.probes.gateway_health`)."""
    closing: Closing = field(default_factory=Closing)
    """Set when the server stops: open event streams end themselves (commit, last byte)."""
    limiter: RateLimiter = field(init=False)
    ingest: Ingest = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.settings.rate, self.settings.burst, self.monotonic)
        self.ingest = Ingest(
            self.registry, self.producer, self.accepted, keys=self.keys, clock=self.clock
        )


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway
