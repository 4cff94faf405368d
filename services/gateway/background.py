"""Serving the gateway from a daemon thread of ``schakel up`` (uvicorn runs its own loop)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from services.audit.engine import make_engine
from services.broker.settings import KafkaSettings
from services.config import Paths
from services.core.errors import SchakelError
from services.core.schema_registry import SchemaRegistry


def start_gateway_thread(
    db_url: str,
    kafka: KafkaSettings,
    schemas: Path,
    port: int,
    report: Callable[[str], None],
    *,
    host: str = "127.0.0.1",
    paths: Paths | None = None,
) -> threading.Thread:
    """Serve the gateway on ``host:port`` in a daemon thread; problems go to ``report``.
    ``paths`` (default: from the environment) names the covenants and the demo mode."""
    from services.gateway.serve import serve  # noqa: PLC0415 - web stack only when served

    def run() -> None:
        try:
            serve(
                make_engine(db_url),
                kafka,
                SchemaRegistry.load(schemas),
                host=host,
                port=port,
                paths=paths,
            )
        except (OSError, SystemExit, SchakelError) as exc:
            report(f"gateway not started on port {port}: {exc}")

    thread = threading.Thread(target=run, name="schakel-gateway", daemon=True)
    thread.start()
    return thread
