"""Shared by the gateway and client tests: signals, a controllable clock, a real server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from services.core.schema_registry import SchemaRegistry, default_schema_dir
from services.database.engine import make_engine
from services.database.tables.gateway import metadata
from services.gateway.accepted import AcceptedIds
from services.gateway.app import create_gateway_app
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.signatures import KeySource
from services.gateway.testing import MemoryBroker
from services.gateway.tokens import TokenStore
from services.metrics.gateway import GatewayMetrics
from services.metrics.health import Health
from tests.core.builders import anomaly

REGISTRY = SchemaRegistry.load(default_schema_dir())
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PARTNERS = ("liander", "vitens")
RECIPIENTS = ("riec-nh", "gemeente-alkmaar")


class Monotonic:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def signal(number: int, *, source: str = "liander", **data: Any) -> dict[str, Any]:
    return anomaly(signal_id=f"{source}-{number:06d}", source=source, **data)


def memory_broker() -> MemoryBroker:
    broker = MemoryBroker()
    spec = {f"signals.{p}": 4 for p in PARTNERS}
    spec.update({f"feed.{r}": 2 for r in RECIPIENTS})
    broker.admin.ensure_topics(spec)
    return broker


def sqlite_engine() -> Engine:
    engine = make_engine("sqlite://")
    metadata.create_all(engine)
    return engine


def make_gateway(
    engine: Engine,
    broker: MemoryBroker,
    *,
    settings: GatewaySettings | None = None,
    monotonic: Monotonic | None = None,
    keys: KeySource | None = None,
    metrics: GatewayMetrics | None = None,
    health: Health | None = None,
) -> Gateway:
    return Gateway(
        tokens=TokenStore(engine, lambda: NOW),
        accepted=AcceptedIds(engine, lambda: NOW),
        producer=broker,
        feed=broker,
        registry=REGISTRY,
        keys=keys,
        settings=settings or GatewaySettings(rate=1000, burst=1000),
        monotonic=monotonic or Monotonic(),
        clock=lambda: NOW,
        metrics=metrics or GatewayMetrics(),
        health=health or Health(),
    )


def issue_all(tokens: TokenStore) -> dict[str, str]:
    """A token per partner and recipient, by name."""
    issued = {name: tokens.issue("partner", name)[0] for name in PARTNERS}
    issued.update({name: tokens.issue("recipient", name)[0] for name in RECIPIENTS})
    return issued


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def serving(app: FastAPI, *, start_timeout: float = 20.0) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def app_for(gateway: Gateway) -> FastAPI:
    return create_gateway_app(gateway)
