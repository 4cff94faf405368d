"""Serving the gateway from a thread of ``schakel up`` (uvicorn runs its own loop there).

``schakel up`` stops the gateway *before* the broker: a signal the gateway acknowledges while
a persistent broker is saving its data at a stop could miss the saved copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from services.audit.engine import make_engine
from services.broker.settings import KafkaSettings
from services.core.errors import SchakelError
from services.core.schema_registry import SchemaRegistry


class GatewayThread:
    """The gateway served from a daemon thread; :meth:`stop` ends it gracefully."""

    def __init__(self) -> None:
        self._server: uvicorn.Server | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self.thread: threading.Thread | None = None

    def _serving(self, server: uvicorn.Server) -> bool:
        """Keep ``server`` for :meth:`stop`; False if a stop came first (do not run it)."""
        with self._lock:
            self._server = server
            return not self._stopping

    def stop(self, timeout: float = 15.0) -> None:
        """Take no new request, let requests in flight finish, flush the producer; wait for
        the thread at most ``timeout`` seconds."""
        with self._lock:
            self._stopping = True
            if self._server is not None:
                self._server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)


def start_gateway_thread(
    db_url: str,
    kafka: KafkaSettings,
    schemas: Path,
    port: int,
    report: Callable[[str], None],
    *,
    host: str = "127.0.0.1",
) -> GatewayThread:
    """Serve the gateway on ``host:port`` in a daemon thread; problems go to ``report``."""
    from services.gateway.serve import gateway_server  # noqa: PLC0415 - web stack only when served

    handle = GatewayThread()

    def run() -> None:
        try:
            server = gateway_server(
                make_engine(db_url), kafka, SchemaRegistry.load(schemas), host=host, port=port
            )
            if handle._serving(server):
                server.run()
        except (OSError, SystemExit, SchakelError) as exc:
            report(f"gateway not started on port {port}: {exc}")

    handle.thread = threading.Thread(target=run, name="schakel-gateway", daemon=True)
    handle.thread.start()
    return handle
