"""Run the audit indexer process: ``schakel indexer`` (``schakel up`` starts one).

Exactly one indexer runs per hub (it is the single writer of the router's audit records and of
their hash chain); a second one in the same group only waits for the partition. Configuration
comes from the environment, like the router's: SCHAKEL_KAFKA_BOOTSTRAP (+ SASL/TLS),
SCHAKEL_DATABASE_URL, the signing key file (checkpoints), SCHAKEL_METRICS_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from prometheus_client import CollectorRegistry, ProcessCollector

from services.audit.hub_store import hub_signer, open_hub_store
from services.broker.settings import KafkaSettings
from services.config import Paths
from services.indexer.loop import IndexerLoop
from services.metrics.errors import MetricsError
from services.metrics.http import MetricsServer
from services.metrics.indexer import IndexerMetrics, indexer_health
from services.metrics.settings import MetricsSettings

log = logging.getLogger("schakel.indexer")


def run_indexer() -> None:
    """Start the indexer and block until SIGTERM/SIGINT (it finishes the poll in hand)."""
    kafka = KafkaSettings.from_env()
    if kafka is None:
        raise SystemExit(
            "SCHAKEL_KAFKA_BOOTSTRAP is not set; start the hub with `schakel up`, or point the "
            "indexer at a Kafka cluster"
        )
    paths = Paths.from_env()
    store = open_hub_store(None, paths.state, hub_signer())
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = IndexerMetrics(registry)
    health = indexer_health(metrics.state)
    health.register(registry)
    settings = MetricsSettings.from_env()
    server = None
    if settings.port is not None:
        try:
            server = MetricsServer(registry, health, settings.host, settings.port).start()
        except MetricsError as exc:
            log.error("%s", exc)
    try:
        asyncio.run(_run(IndexerLoop(kafka, store, metrics=metrics)))
    finally:
        if server is not None:
            server.stop()
        store.checkpoint()  # sign the head, so a stopped indexer leaves nothing unsigned
        store.close()


async def _run(loop: IndexerLoop) -> None:
    stop = asyncio.Event()
    running = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        running.add_signal_handler(signum, stop.set)
    await loop.start()
    task = asyncio.create_task(loop.run())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    await loop.stop()
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    await task  # re-raises a store error: the supervisor restarts the indexer
