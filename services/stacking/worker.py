"""Run the stacking worker process: wire the dependencies, then run the loop until SIGTERM.

Configuration comes from the environment like the router's (SCHAKEL_KAFKA_BOOTSTRAP,
SCHAKEL_DATABASE_URL, SCHAKEL_KEYS, SCHAKEL_COVENANTS, SCHAKEL_STATE_DIR), so ``schakel up``
starts it as a supervised child and an operator can run it elsewhere. Covenant changes are
picked up on restart.

Metrics (:class:`~services.metrics.workers.WorkerMetrics`: signals used and skipped per reason,
alerts raised and updated, store write latency) are kept always and served with ``/healthz``
and ``/readyz`` on ``SCHAKEL_METRICS_PORT`` when it is set, as the router worker does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector
from sqlalchemy import Engine

from services.audit.hub_store import hub_signer, open_hub_store
from services.broker.settings import KafkaSettings
from services.config import DEMO_ENV, Paths, demo_mode, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.core.stacking.alerts import Alert
from services.core.stacking.engine import Changes, Snapshot, Stacker
from services.core.stacking.extract import Extractor
from services.core.stacking.purpose import StackingRules
from services.database.engine import make_engine
from services.keys import default_keys_path
from services.keys.file_store import FileKeyStore
from services.metrics.errors import MetricsError
from services.metrics.health import Health
from services.metrics.http import MetricsServer
from services.metrics.settings import MetricsSettings
from services.metrics.wiring import database_check
from services.metrics.workers import WorkerMetrics, running_check, started_check
from services.router.topics import signals_topic
from services.stacking.batch import Record, StackedBatch, StackingStep
from services.stacking.config_files import load_stacking_config
from services.stacking.errors import StackingError
from services.stacking.loop import Signer, StackingLoop, StackingLoopConfig
from services.stacking.model import StackingStore
from services.stacking.store import SqlStackingStore

log = logging.getLogger("schakel.stacking")


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_worker(*, batch_max: int = 1000) -> None:
    """Start the stacking worker and block until it stops (SIGTERM/SIGINT, or a crash)."""
    kafka = KafkaSettings.from_env()
    if kafka is None:
        raise SystemExit(
            "SCHAKEL_KAFKA_BOOTSTRAP is not set; start the hub with `schakel up`, or point the "
            "worker at a Kafka cluster"
        )
    paths = Paths.from_env()
    keys = FileKeyStore.open(default_keys_path())
    pseudonymiser = Pseudonymiser(keys)
    loaded = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        pseudonymiser,
        today=utc_now().date(),
        demo=paths.demo,
    )
    if loaded.policy is None:
        raise SystemExit("covenants have errors; run `schakel covenant check`")
    config = load_stacking_config(paths.covenants)
    policy = loaded.policy
    audit = open_hub_store(None, paths.state, hub_signer())  # migrates the database too
    engine = make_engine(None)
    sql_store = SqlStackingStore(engine)
    sql_store.create_schema()
    observed = stacking_observability(engine, MetricsSettings.from_env())
    store = TimedStackingStore(sql_store, observed.metrics)
    rules = StackingRules(policy, config.purpose)
    step = CountedStep(
        loaded.registry,
        policy,
        rules,
        Extractor(config, pseudonymiser, rules.partner_kinds),
        Stacker(config, store.load()),
        metrics=observed.metrics,
    )
    alerts_source = config.alert.source
    topics = [signals_topic(p) for p in sorted(policy.suppliers) if p != alerts_source]
    loop = StackingLoop(
        kafka,
        store,
        audit,
        step,
        config,
        pseudonymiser,
        StackingLoopConfig(topics=topics, batch_max=batch_max),
        clock=utc_now,
        sign=alert_signer(alerts_source),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.info(
        "stacking %d topic(s), %d location(s) tracked", len(topics), len(step.stacker.locations)
    )
    try:
        asyncio.run(_main(loop, observed.metrics))
    except StackingError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        observed.stop()
        audit.checkpoint()
        audit.close()
        store.close()


KEY_FILE_ENV = "SCHAKEL_STACKING_KEY_FILE"


def alert_signer(source: str) -> Signer:
    """Sign alerts with the key file in ``SCHAKEL_STACKING_KEY_FILE`` (made by ``schakel keys
    partner schakel``, its public half registered for the alert source in the covenant), or
    — only in demo mode (``SCHAKEL_DEMO=1``, set by ``schakel up --demo``) — with the TEST key
    of the source party, which anyone can derive."""
    from services.cli.partner_key import read_partner_key  # noqa: PLC0415 - key files only here
    from services.core.signing import sign  # noqa: PLC0415
    from services.demo.keys import TEST_KEY_WARNING, DemoSigner  # noqa: PLC0415

    configured = os.environ.get(KEY_FILE_ENV, "").strip()
    if not configured:
        if not demo_mode():
            raise SystemExit(
                f"{KEY_FILE_ENV} is not set, so stacking alerts cannot be signed. Fix: make a key "
                f"with `schakel keys partner {source}`, register its public half for {source!r} "
                f"in the covenant and point {KEY_FILE_ENV} at the key file "
                f"(demo mode only: {DEMO_ENV}=1 signs with the public TEST key)"
            )
        log.warning("%s not set: alerts are signed with the %s", KEY_FILE_ENV, TEST_KEY_WARNING)
        return DemoSigner()
    key = read_partner_key(Path(configured))
    if key.partner != source:
        raise SystemExit(
            f"{KEY_FILE_ENV} holds a key of {key.partner!r}, but alerts are published as "
            f"{source!r}. Fix: make one with `schakel keys partner {source}`"
        )
    return lambda envelope: sign(envelope, key.private_key, key.key_id)


async def _main(loop: StackingLoop, metrics: WorkerMetrics) -> None:
    running = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    await loop.start()
    metrics.state.started = time.monotonic()
    task = asyncio.create_task(loop.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    metrics.state.stopped = True
    await loop.stop()
    stopper.cancel()
    if task.done():
        task.result()  # a crash propagates: the supervisor restarts the worker
    else:
        await task


@dataclass
class StackingObservability:
    registry: CollectorRegistry
    metrics: WorkerMetrics
    health: Health
    server: MetricsServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def stacking_observability(
    engine: Engine, settings: MetricsSettings, *, serve: bool = True
) -> StackingObservability:
    """The worker's registry and probes (live while its loop runs; ready once its Kafka
    clients started and while the database answers), served on ``settings.port`` when set (a
    port in use is logged, not fatal: the worker stacks without it)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = WorkerMetrics(registry, "stacking")
    health = Health(
        liveness={"loop": running_check(metrics.state)},
        readiness={"broker": started_check(metrics.state), "store": database_check(engine)},
    )
    health.register(registry)
    made = StackingObservability(registry, metrics, health)
    if serve and settings.port is not None:
        try:
            made.server = MetricsServer(registry, health, settings.host, settings.port).start()
        except MetricsError as exc:
            log.error("%s", exc)
    return made


@dataclass
class CountedStep(StackingStep):
    """The stacking step, counting used and skipped signals per reason into ``metrics``."""

    metrics: WorkerMetrics | None = None

    def run(self, records: Sequence[Record], now: datetime) -> StackedBatch:
        out = super().run(records, now)
        if self.metrics is not None:
            self.metrics.counted(out.used, out.skipped)
        return out


class TimedStackingStore:
    """A :class:`StackingStore` timing each batch's write and counting the alerts in it."""

    def __init__(self, store: StackingStore, metrics: WorkerMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def load(self) -> Snapshot:
        return self._store.load()

    def write(self, changes: Changes) -> None:
        started = time.perf_counter()
        self._store.write(changes)
        self._metrics.written(time.perf_counter() - started)
        for alert in changes.alerts.values():
            self._metrics.alert(raised=alert.raised_at == alert.updated_at)

    def unpublished(self) -> list[Alert]:
        return self._store.unpublished()

    def mark_published(self, alerts: list[Alert]) -> None:
        self._store.mark_published(alerts)

    def alerts(
        self, *, municipality: str | None = None, min_score: float = 0.0, limit: int = 1000
    ) -> list[Alert]:
        return self._store.alerts(municipality=municipality, min_score=min_score, limit=limit)

    def close(self) -> None:
        self._store.close()
