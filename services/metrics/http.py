"""Serving ``/metrics``, ``/healthz`` and ``/readyz``: a small threaded server, or FastAPI routes.

The router worker has no web framework of its own in play, so :class:`MetricsServer` serves
the three paths from a daemon thread with the standard library (probes answer even while the
event loop is busy with a batch). The web workplace includes :func:`health_routes` instead;
the gateway, whose port partners reach, includes only :func:`probe_routes` and serves its
``/metrics`` from a :class:`MetricsServer` on a port of its own. Both answer the same: the Prometheus text format, and JSON
``{"status": "ok"|"failing", "checks": {...}}`` with 200 or 503.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.metrics.errors import MetricsError
from services.metrics.health import Health, Outcome

PATHS = ("/metrics", "/healthz", "/readyz")


def _status(outcome: Outcome) -> int:
    return HTTPStatus.OK if outcome.ok else HTTPStatus.SERVICE_UNAVAILABLE


def health_routes(registry: CollectorRegistry, health: Health) -> APIRouter:
    """``/metrics``, ``/healthz`` and ``/readyz`` for a FastAPI app (no sign-in needed:
    nothing they show names a person or a place)."""
    router = probe_routes(health)

    @router.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def probe_routes(health: Health) -> APIRouter:
    """``/healthz`` and ``/readyz`` only, for an app whose port the outside world reaches
    (the gateway's partners): its ``/metrics`` is served on a listener of its own
    (:class:`MetricsServer`)."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        outcome = health.live()
        return JSONResponse(outcome.to_json(), status_code=_status(outcome))

    @router.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        outcome = health.ready()
        return JSONResponse(outcome.to_json(), status_code=_status(outcome))

    return router


class MetricsServer:
    """The three paths on ``host:port`` from a daemon thread; ``port=0`` picks a free one."""

    def __init__(
        self, registry: CollectorRegistry, health: Health, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        handler = _handler(registry, health)
        try:
            self._server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise MetricsError(
                f"cannot serve metrics on {host}:{port} ({exc.strerror}); choose another "
                "SCHAKEL_METRICS_PORT or stop what uses it"
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="schakel-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(registry: CollectorRegistry, health: Health) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(HTTPStatus.OK, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path in ("/healthz", "/readyz"):
                outcome = health.live() if path == "/healthz" else health.ready()
                body = json.dumps(outcome.to_json()).encode()
                self._send(_status(outcome), "application/json", body)
            else:
                self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes every few seconds are not events worth a log line

    return Handler
