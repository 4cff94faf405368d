"""Serving the gateway from a daemon thread of ``schakel up`` (uvicorn runs its own loop).

``schakel up`` stops the gateway *before* the broker: a signal the gateway acknowledges while
a persistent broker is saving its data at a stop could miss the saved copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from services.broker.settings import KafkaSettings
from services.config import Paths
from services.core.errors import SchakelError
from services.core.schema_registry import SchemaRegistry
from services.database.engine import make_engine

if TYPE_CHECKING:
    from services.gateway.serve import GatewayServer


class GatewayThread:
    """The gateway served from a daemon thread; :meth:`stop` ends it before the broker goes,
    so its Kafka clients close while the broker still answers (a quiet shutdown)."""

    def __init__(self, run: Callable[[GatewayThread], None]) -> None:
        self._lock = threading.Lock()
        self._server: GatewayServer | None = None
        self._stopping = False
        self.thread = threading.Thread(
            target=run, args=(self,), name="schakel-gateway", daemon=True
        )

    def serving(self, server: GatewayServer) -> bool:
        """Record the server about to run; False if a stop came first (then do not run it)."""
        with self._lock:
            self._server = server
            return not self._stopping

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the server to exit and wait (bounded) until it has."""
        with self._lock:
            self._stopping = True
            if self._server is not None:
                self._server.stop()
        if self.thread.is_alive():
            self.thread.join(timeout)


def start_gateway_thread(
    db_url: str,
    kafka: KafkaSettings,
    schemas: Path,
    port: int,
    report: Callable[[str], None],
    *,
    host: str = "127.0.0.1",
    paths: Paths | None = None,
) -> GatewayThread:
    """Serve the gateway on ``host:port`` in a daemon thread; problems go to ``report``.
    ``paths`` (default: from the environment) names the covenants and the demo mode."""
    from services.gateway.serve import gateway_server  # noqa: PLC0415 - web stack only when served

    def run(handle: GatewayThread) -> None:
        try:
            server = gateway_server(
                make_engine(db_url),
                kafka,
                SchemaRegistry.load(schemas),
                host=host,
                port=port,
                paths=paths,
            )
            if handle.serving(server):
                server.run()
        except (OSError, SystemExit, SchakelError) as exc:
            report(f"gateway not started on port {port}: {exc}")

    handle = GatewayThread(run)
    handle.thread.start()
    return handle
