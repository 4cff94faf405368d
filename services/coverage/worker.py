"""The coverage worker: consume every partner's signals topic, store the fact of each counted
signal, then commit.

Its own consumer group (``schakel-coverage``) reads the same topics as the router and decides
each signal with the same pipeline and the covenants in force (reloaded when the files
change), so it counts what the router routes under a covenant rule. Facts are written before
offsets are committed: a crash re-reads the batch, and facts are idempotent by (source,
signal id), so nothing is lost or counted twice. It stores no signal, only the fact.

Metrics (:class:`~services.metrics.workers.WorkerMetrics`: signals used — counted — and skipped
as ``not_covered``, fact write latency) are kept always and served with ``/healthz`` and
``/readyz`` on ``SCHAKEL_METRICS_PORT`` when it is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError
from prometheus_client import CollectorRegistry, ProcessCollector
from sqlalchemy import Engine

from services.broker.aborted import drop_ended_aborts
from services.broker.fetching import BACKGROUND_WAIT_MS, fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.config import Loaded, Paths, load_policy
from services.core.coverage.facts import Fact
from services.core.coverage.release import CellKey
from services.core.pseudonyms import Pseudonymiser
from services.coverage.ingest import IngestSummary, ingest
from services.coverage.store import CoverageStore, SqlCoverageStore
from services.database.engine import make_engine
from services.hub.state import client_settings
from services.keys import default_keys_path
from services.keys.file_store import FileKeyStore
from services.metrics.errors import MetricsError
from services.metrics.health import Health
from services.metrics.http import MetricsServer
from services.metrics.settings import MetricsSettings
from services.metrics.wiring import database_check
from services.metrics.workers import WorkerMetrics, running_check, started_check
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic

log = logging.getLogger("schakel.coverage")

GROUP = "schakel-coverage"
CLOSE_TIMEOUT_S = 10.0
"""How long a stopping worker waits for its consumer to leave the group."""
POLL_LIMIT_S = 2.0
COMMIT_LIMIT_S = 5.0
"""How long one commit may take before the worker looks at its stop flag again."""
"""How long one poll may take before the worker looks at its stop flag again."""


async def _commit(consumer: AIOKafkaConsumer) -> None:
    """Commit what was read; a commit refused after a rebalance (a broker restart causes one)
    is not an error: the new owner reads the batch again, and counting is idempotent. A
    commit that gets no answer (the broker is gone) is given up after
    :data:`COMMIT_LIMIT_S`, so the worker still sees its stop flag."""
    try:
        await asyncio.wait_for(consumer.commit(), COMMIT_LIMIT_S)
    except CommitFailedError:
        log.warning("offset commit refused after a rebalance; the batch will be re-read")
    except TimeoutError:
        log.warning(
            "offset commit not answered within %.0f s; the batch may be re-read", COMMIT_LIMIT_S
        )


class CoverageWorker:
    def __init__(
        self,
        kafka: KafkaSettings,
        store: CoverageStore,
        source: PolicySource,
        topics: Sequence[str],
        clock: Callable[[], datetime],
        *,
        group_id: str = GROUP,
        batch_max: int = 1000,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self._kafka = kafka
        self.metrics = metrics or WorkerMetrics(CollectorRegistry(), "coverage")
        self._store = TimedCoverageStore(store, self.metrics)
        self._source = source
        self._topics = list(topics)
        self._clock = clock
        self._group_id = group_id
        self._batch_max = batch_max
        self.totals = IngestSummary()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is stored and committed first."""
        consumer = AIOKafkaConsumer(
            *self._topics,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self._batch_max,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            **fetch_settings(BACKGROUND_WAIT_MS),
            **self._kafka.client_kwargs_aiokafka(),
        )
        await consumer.start()
        hold_empty_fetches(consumer, BACKGROUND_WAIT_MS)
        drop_ended_aborts(consumer)  # noida lists aborts long ended
        self.metrics.state.started = time.monotonic()
        try:
            while not stop.is_set():
                try:
                    batch = await asyncio.wait_for(
                        consumer.getmany(timeout_ms=300, max_records=self._batch_max), POLL_LIMIT_S
                    )
                except TimeoutError:  # no assignment (broker gone): getmany waits past 300 ms
                    continue
                self.metrics.polled()
                raws = [m.value for messages in batch.values() for m in messages if m.value]
                if raws:
                    await asyncio.to_thread(self._count, raws)
                if batch:
                    await _commit(consumer)
        finally:
            self.metrics.state.stopped = True
            # bounded: with the broker gone (a hub killed outright) aiokafka would try to
            # leave the group forever, and the worker would outlive its hub
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.stop(), CLOSE_TIMEOUT_S)

    def _count(self, raws: list[bytes]) -> None:
        self._source.maybe_reload()
        current = self._source.current
        done = ingest(
            raws, current.registry, current.policy, self._store, self._clock(), at_signal_time=False
        )
        self.totals.read += done.read
        self.totals.counted += done.counted
        self.totals.new += done.new
        self.metrics.counted(done.counted, {"not_covered": done.read - done.counted})
        log.debug("coverage batch: %d read, %d counted, %d new", done.read, done.counted, done.new)


def run_worker(database: str | None = None) -> None:
    """Run the coverage worker with the hub's configuration (``SCHAKEL_KAFKA_BOOTSTRAP`` or the
    running hub, ``SCHAKEL_DATABASE_URL``, ``SCHAKEL_KEYS``, ``SCHAKEL_COVENANTS``) until
    SIGTERM or SIGINT."""
    paths = Paths.from_env()
    pseudonymiser = Pseudonymiser(FileKeyStore.open(default_keys_path()))

    def load(today: date) -> Loaded:
        return load_policy(
            paths.covenants,
            paths.schemas,
            paths.reference,
            pseudonymiser,
            today=today,
            demo=paths.demo,
        )

    def now() -> datetime:
        return datetime.now(UTC)

    source = PolicySource(load, paths.covenants, lambda: now().date())
    topics = [signals_topic(p) for p in sorted(source.current.policy.suppliers)]
    engine = make_engine(database)
    store = SqlCoverageStore(engine)
    store.create_schema()
    registry, health, server = coverage_observability(engine, MetricsSettings.from_env())
    metrics = WorkerMetrics(registry, "coverage")
    health.liveness["loop"] = running_check(metrics.state, stuck_after_s=120.0)
    health.readiness["broker"] = started_check(metrics.state)
    worker = CoverageWorker(client_settings(), store, source, topics, now, metrics=metrics)

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        await worker.run(stop)

    log.info("coverage worker: %d topics, group %s", len(topics), GROUP)
    try:
        asyncio.run(main())
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        log.info(
            "coverage worker stopped: %d read, %d counted, %d new",
            worker.totals.read,
            worker.totals.counted,
            worker.totals.new,
        )


def coverage_observability(
    engine: Engine, settings: MetricsSettings
) -> tuple[CollectorRegistry, Health, MetricsServer | None]:
    """The worker's registry and probes (the loop's checks are added by the caller), served on
    ``settings.port`` when set (a port in use is logged, not fatal)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    health = Health(liveness={}, readiness={"store": database_check(engine)})
    health.register(registry)
    server = None
    if settings.port is not None:
        try:
            server = MetricsServer(registry, health, settings.host, settings.port).start()
        except MetricsError as exc:
            log.error("%s", exc)
    return registry, health, server


class TimedCoverageStore:
    """A :class:`CoverageStore` timing each write of facts."""

    def __init__(self, store: CoverageStore, metrics: WorkerMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def add(self, facts: Sequence[Fact]) -> int:
        started = time.perf_counter()
        new = self._store.add(facts)
        self._metrics.written(time.perf_counter() - started)
        return new

    def counts(self, months: Sequence[str]) -> Counter[CellKey]:
        return self._store.counts(months)

    def months(self) -> list[str]:
        return self._store.months()
