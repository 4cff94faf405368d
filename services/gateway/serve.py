"""Running the gateway with uvicorn on Kafka and the audit database, for ``schakel gateway``
and ``schakel up``.

The gateway's tables live in the audit database (Alembic revision ``0006``);
:func:`~services.gateway.tables.prepare_tables` brings the database to the newest schema first. The producer is started
by the app's lifespan, an hourly task prunes the idempotency record, and a broker watch keeps
``/readyz`` informed (:mod:`services.gateway.probes`). Signatures are checked against the keys
of the covenant files (:mod:`services.gateway.signatures`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import FrameType

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, ProcessCollector
from sqlalchemy import Engine

from services.broker.settings import KafkaSettings
from services.config import Paths
from services.core.policy import LOCAL_TIME
from services.core.schema_registry import SchemaRegistry
from services.gateway.accepted import DEFAULT_RETENTION, AcceptedIds
from services.gateway.app import Lifespan, create_gateway_app
from services.gateway.closing import Closing
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.kafka import KafkaFeedSource, KafkaProducer
from services.gateway.probes import BrokerWatch, gateway_health, watching
from services.gateway.signatures import CovenantKeys, KeySource
from services.gateway.tables import prepare_tables
from services.gateway.tokens import TokenStore
from services.metrics.gateway import GatewayMetrics
from services.metrics.http import MetricsServer
from services.metrics.settings import MetricsSettings

DEFAULT_PORT = 8471
GRACEFUL_S = 5
"""Seconds a stopping gateway waits for open requests to end (event streams end at once)."""
PRUNE_EVERY = timedelta(hours=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


def kafka_app(
    engine: Engine,
    kafka: KafkaSettings,
    registry: SchemaRegistry,
    keys: KeySource | None,
    settings: GatewaySettings | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> FastAPI:
    """The gateway app on Kafka and ``engine`` (its producer starts with the app), checking
    signatures against ``keys`` (None: left to the router)."""
    producer = KafkaProducer(kafka)
    accepted = AcceptedIds(engine, clock)
    metrics = GatewayMetrics(CollectorRegistry())
    ProcessCollector(registry=metrics.registry)
    watch = BrokerWatch(producer)
    health = gateway_health(engine, watch)
    health.register(metrics.registry)
    gateway = Gateway(
        tokens=TokenStore(engine, clock),
        accepted=accepted,
        producer=producer,
        feed=KafkaFeedSource(kafka),
        registry=registry,
        keys=keys,
        settings=settings or GatewaySettings(),
        clock=clock,
        metrics=metrics,
        health=health,
    )
    return create_gateway_app(gateway, lifespan=watching(watch, _lifespan(producer, accepted)))


def covenant_keys(paths: Paths | None = None) -> CovenantKeys:
    """The partners' keys of the covenant files the hub runs (``SCHAKEL_COVENANTS``)."""
    where = paths or Paths.from_env()
    return CovenantKeys(
        list(where.covenants),
        where.schemas,
        where.reference,
        today=lambda: utc_now().astimezone(LOCAL_TIME).date(),
        demo=where.demo,
    )


async def _reachable(kafka: KafkaSettings) -> None:
    """Connect a producer once, so a wrong bootstrap is one clear error, not a traceback."""
    async with KafkaProducer(kafka):
        pass


def _lifespan(producer: KafkaProducer, accepted: AcceptedIds) -> Lifespan:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await producer.start()
        pruner = asyncio.create_task(_prune(accepted))
        try:
            yield
        finally:
            pruner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pruner
            await producer.stop()

    return lifespan


async def _prune(accepted: AcceptedIds) -> None:
    while True:
        await asyncio.to_thread(accepted.prune, DEFAULT_RETENTION)
        await asyncio.sleep(PRUNE_EVERY.total_seconds())


def serve(
    engine: Engine,
    kafka: KafkaSettings,
    registry: SchemaRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    settings: GatewaySettings | None = None,
    paths: Paths | None = None,
    metrics: MetricsSettings | None = None,
) -> None:
    """Serve the gateway on ``host:port`` until interrupted (blocks), and its ``/metrics`` on
    the port of ``metrics`` (default: ``SCHAKEL_METRICS_PORT``; unset: not served). Raises
    :class:`~services.gateway.errors.GatewayError` at once if Kafka cannot be reached or the
    covenants (``paths``, default ``SCHAKEL_COVENANTS``) do not check clean."""
    server = gateway_server(
        engine, kafka, registry, host=host, port=port, settings=settings, paths=paths
    )
    observed = metrics_server(server.gateway, metrics or MetricsSettings.from_env())
    try:
        with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run: Ctrl-C is a clean stop
            server.run()
    finally:
        if observed is not None:
            observed.stop()


def gateway_server(
    engine: Engine,
    kafka: KafkaSettings,
    registry: SchemaRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    settings: GatewaySettings | None = None,
    paths: Paths | None = None,
) -> GatewayServer:
    """The gateway's server, ready to ``run()``; :meth:`GatewayServer.stop` stops it (open
    event streams end themselves, each committing what it sent). ``paths`` (default: from the
    environment) names the covenants and the demo mode."""
    prepare_tables(engine)
    keys = covenant_keys(paths)
    asyncio.run(_reachable(kafka))
    app = kafka_app(engine, kafka, registry, keys, settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_S,
    )
    return GatewayServer(config, app.state.gateway)


class GatewayServer(uvicorn.Server):
    """uvicorn's server that, asked to stop, first tells the open event streams to end."""

    def __init__(self, config: uvicorn.Config, gateway: Gateway) -> None:
        super().__init__(config)
        self.gateway = gateway
        self._closing: Closing = gateway.closing

    def stop(self) -> None:
        """Stop serving (from any thread): streams end, then the server exits."""
        self._closing.close()
        self.should_exit = True

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Ctrl-C or SIGTERM (uvicorn's signal handler)."""
        self._closing.close()
        super().handle_exit(sig, frame)


def metrics_server(gateway: Gateway, settings: MetricsSettings) -> MetricsServer | None:
    """``/metrics`` (and the probes) of ``gateway`` on ``settings``' own port, started; ``None``
    without a port. Never on the gateway's port: partners reach that one."""
    if settings.port is None:
        return None
    server = MetricsServer(gateway.metrics.registry, gateway.health, settings.host, settings.port)
    return server.start()
