"""ASGI middleware timing each request of the gateway into ``schakel_gateway_request_seconds``.

A plain ASGI wrapper (not Starlette's BaseHTTPMiddleware, which buffers streamed answers):
the clock runs from the call until the app returned, so a long-poll or a server-sent-events
stream is timed whole. The route label is the path only when it is one of the gateway's own
routes (they have no path parameters), else ``other``; the probes and ``/metrics`` are not
timed (scrapes would drown the partners' requests).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from services.metrics.gateway import GatewayMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

ROUTES = frozenset({"/v1/signals", "/v1/feed", "/v1/feed/events", "/v1/openapi.json"})
UNTIMED = frozenset({"/metrics", "/healthz", "/readyz"})


class RequestTimer:
    def __init__(self, app: App, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in UNTIMED:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the server answers when the app raises before starting an answer

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.request(
                path if path in ROUTES else "other",
                str(scope.get("method", "")),
                status,
                time.perf_counter() - started,
            )
