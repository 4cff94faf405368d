"""``schakel maintenance``: the maintenance tick as a service of its own.

``schakel up`` ticks :class:`~services.hub.maintenance.Maintenance` itself. A deployment that
runs routers, web, gateway and stacking as separate services (deploy/compose, deploy/k8s)
runs this instead: every ``interval`` seconds it records what each recipient's consumer group
has consumed and — when the broker lost topics — recreates them and produces every outbox
entry not yet consumed again. It logs counts and topic names only, never an identifier.

Run exactly one. Two at once are safe but wasteful: both re-deliver after a data loss, and
recipients drop the duplicates by exchange id (every copy has the same id and bytes).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from services.audit.store import SqlAuditStore
from services.broker.settings import KafkaSettings
from services.config import Paths, check_covenants
from services.core.covenant.checker import CheckResult
from services.core.errors import SchakelError
from services.database.engine import make_engine
from services.hub.maintenance import Maintenance, MaintenanceReport
from services.hub.maintenance_metrics import (
    MaintenanceMetrics,
    maintenance_registry,
    unconsumed_counts,
)
from services.metrics.errors import MetricsError
from services.metrics.health import Health
from services.metrics.http import MetricsServer
from services.metrics.settings import MetricsSettings
from services.router.topics import TopicLayout

log = logging.getLogger("schakel.maintenance")


class Ticker(Protocol):
    """What the service runs each interval (:class:`Maintenance`, or a test's double)."""

    def tick(self) -> MaintenanceReport: ...


@dataclass(frozen=True)
class ServiceOptions:
    interval_s: float = 5.0
    once: bool = False
    redeliver: bool = False
    """Re-deliver every unconsumed outbox entry at the first tick, whether topics were lost."""


def run_ticks(
    ticker: Ticker,
    backlog: Callable[[], Mapping[str, int]],
    metrics: MaintenanceMetrics,
    stop: threading.Event,
    options: ServiceOptions,
) -> bool:
    """Tick until ``stop`` is set (after the current tick), or once; whether the last tick
    succeeded. A failed tick is logged and retried at the next interval."""
    ok = False
    while not stop.is_set():
        metrics.started()
        try:
            report = ticker.tick()
            _log_report(report)
            metrics.record(report)
            metrics.succeeded(backlog())
            ok = True
        except (SchakelError, KafkaError) as exc:
            ok = False
            metrics.failed()
            log.error("maintenance tick failed: %s: %s", exc.__class__.__name__, exc)
        except Exception as exc:  # noqa: BLE001 - retried next tick; the text may hold values
            ok = False
            metrics.failed()
            log.error("maintenance tick failed: %s", exc.__class__.__name__)
        if options.once:
            break
        stop.wait(options.interval_s)
    return ok


def _log_report(report: MaintenanceReport) -> None:
    if report.recreated:
        log.warning(
            "broker had lost %d topic(s); recreated: %s",
            len(report.recreated),
            ", ".join(report.recreated),
        )
    if report.redelivered:
        per_topic = ", ".join(f"{t}={n}" for t, n in sorted(report.redelivered_by_topic.items()))
        log.warning("re-delivered %d feed message(s): %s", report.redelivered, per_topic)
    if report.consumed:
        log.info("marked %d outbox entries consumed", report.consumed)


def parties(checked: CheckResult) -> tuple[set[str], set[str]]:
    """Suppliers and recipients named by the covenants (as the compiled policy has them)."""
    suppliers: set[str] = set()
    recipients: set[str] = set()
    for item in checked.covenants:
        for party_id, party in item.covenant.parties.items():
            if "supplier" in party.roles:
                suppliers.add(party_id)
            if "recipient" in party.roles:
                recipients.add(party_id)
    return suppliers, recipients


def run_maintenance(options: ServiceOptions, layout: TopicLayout) -> int:
    """Wire the service from the environment, tick until SIGTERM/SIGINT; the exit code."""
    kafka = KafkaSettings.from_env()
    if kafka is None:
        raise SystemExit(
            "SCHAKEL_KAFKA_BOOTSTRAP is not set; point the maintenance service at the hub's "
            "Kafka cluster (`schakel up` runs maintenance itself)"
        )
    paths = Paths.from_env()
    _, _, checked = check_covenants(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        today=datetime.now(UTC).date(),
        demo=paths.demo,
    )
    if not checked.ok:
        raise SystemExit("covenants have errors; run `schakel covenant check`")
    suppliers, recipients = parties(checked)
    try:
        settings = MetricsSettings.from_env()
    except MetricsError as exc:
        raise SystemExit(str(exc)) from None
    engine = make_engine(None)
    store = SqlAuditStore(engine)  # outbox only: it writes no audit record, so no signer
    store.create_schema()
    spec = layout.spec(suppliers, recipients)
    registry, metrics, health = maintenance_registry(recipients, options.interval_s)
    server = _serve(registry, health, settings)
    stop = threading.Event()
    _on_stop_signals(stop)
    log.info(
        "maintenance of %d topic(s) for %d recipient(s) every %.1f s",
        len(spec),
        len(recipients),
        options.interval_s,
    )
    maintenance = Maintenance(kafka, store, spec, recipients)
    if options.redeliver:
        log.warning("re-delivering every unconsumed outbox entry at the first tick, as asked")
        maintenance.request_redelivery()
    try:
        ok = run_ticks(
            maintenance,
            lambda: unconsumed_counts(engine),
            metrics,
            stop,
            options,
        )
    finally:
        if server is not None:
            server.stop()
        store.close()
        engine.dispose()
    log.info("maintenance stopped")
    return 0 if ok or not options.once else 1


def _serve(
    registry: CollectorRegistry, health: Health, settings: MetricsSettings
) -> MetricsServer | None:
    """The metrics server on ``SCHAKEL_METRICS_PORT`` when set (a port in use is logged, not
    fatal: the service keeps re-delivering without it)."""
    if settings.port is None:
        return None
    try:
        return MetricsServer(registry, health, settings.host, settings.port).start()
    except MetricsError as exc:
        log.error("%s", exc)
        return None


def _on_stop_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: FrameType | None) -> None:
        if not stop.is_set():
            log.info("%s: stopping after the current tick", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
