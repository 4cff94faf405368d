"""Run one router worker process: wire the dependencies, then hand over to Faust's worker.

The worker reads its configuration from the environment, so ``schakel up`` (and tests) can
start any number of them as child processes, and an operator can run them on other machines
against the same Kafka cluster and database.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import faust

from services.audit.hub_store import hub_signer, open_hub_store
from services.broker.settings import KafkaSettings
from services.config import Loaded, Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.keys import default_keys_path
from services.keys.file_store import FileKeyStore
from services.metrics.errors import MetricsError
from services.metrics.settings import MetricsSettings
from services.metrics.wiring import RouterObservability, router_observability
from services.router.app import create_app, worker_arguments
from services.router.gc_tuning import tune_gc
from services.router.loop import AUDIT_PATHS, AuditPath, LoopConfig
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic

log = logging.getLogger("schakel.router")


AUDIT_PATH_ENV = "SCHAKEL_AUDIT_PATH"


def utc_now() -> datetime:
    return datetime.now(UTC)


def audit_path_from_env(environ: Mapping[str, str] | None = None) -> AuditPath:
    """``$SCHAKEL_AUDIT_PATH``: ``transactional`` (the default: noida, Apache Kafka),
    ``audit-first`` (a broker without transactions: ``schakel up`` sets it for Tansu) or
    ``sql`` (the explicit fallback: audit and outbox in SQL on the router's path)."""
    value = (os.environ if environ is None else environ).get(AUDIT_PATH_ENV, "").strip()
    if not value:
        return "transactional"
    for path in AUDIT_PATHS:
        if value == path:
            return path
    raise SystemExit(
        f"{AUDIT_PATH_ENV}={value!r} is not an audit path. Fix: set it to one of "
        f"{', '.join(AUDIT_PATHS)}, or unset it (transactional)."
    )


def audit_path_for_broker(supports_transactions: bool) -> AuditPath:
    """The log-first path a broker can run: ``transactional`` where it has transactions
    (noida, Apache Kafka), ``audit-first`` where it has none (Tansu)."""
    return "transactional" if supports_transactions else "audit-first"


def run_worker(
    *,
    group_id: str = "schakel-router",
    instance_id: str | None = None,
    batch_max: int = 500,
    web_port: int | None = None,
    covenants: Sequence[Path] | None = None,
    loglevel: str = "info",
) -> None:
    """Start one router worker and block until it stops (SIGTERM/SIGINT, or a crash)."""
    kafka = KafkaSettings.from_env()
    if kafka is None:
        raise SystemExit(
            "SCHAKEL_KAFKA_BOOTSTRAP is not set; start the hub with `schakel up`, or point the "
            "worker at a Kafka cluster"
        )
    paths = Paths.from_env()
    covenant_paths = list(covenants or paths.covenants)
    keys = FileKeyStore.open(default_keys_path())
    pseudonymiser = Pseudonymiser(keys)

    def load(today: date) -> Loaded:
        return load_policy(
            covenant_paths,
            paths.schemas,
            paths.reference,
            pseudonymiser,
            today=today,
            demo=paths.demo,
        )

    policies = PolicySource(load, covenant_paths, today=lambda: utc_now().date())
    audit_path = audit_path_from_env()
    # only the SQL fallback writes audit records here; otherwise the indexer is their writer
    store = open_hub_store(None, paths.state, hub_signer() if audit_path == "sql" else None)
    topics = [signals_topic(p) for p in sorted(policies.current.policy.suppliers)]
    config = LoopConfig(
        topics=topics,
        group_id=group_id,
        instance_id=instance_id,
        batch_max=batch_max,
        audit_path=audit_path,
    )
    datadir = paths.state / "router"
    datadir.mkdir(parents=True, exist_ok=True)
    app, router = create_app(
        kafka,
        store,
        policies,
        config,
        clock=utc_now,
        datadir=datadir,
        web_port=web_port,
    )
    observability = _observability()
    router.instrument(observability.metrics)
    worker = faust.Worker(app, **worker_arguments(loglevel))
    tune_gc()  # after loading covenants, schemas and the app: those never become garbage

    def reload_on_hup(*_: object) -> None:
        policies.request_reload()

    signal.signal(signal.SIGHUP, reload_on_hup)
    try:
        worker.execute_from_commandline()
    finally:
        observability.stop()
        if audit_path == "sql":
            store.checkpoint()  # sign the head, so an idle or stopped hub leaves nothing unsigned
        store.close()


def _observability() -> RouterObservability:
    """Metrics always; served on ``SCHAKEL_METRICS_PORT`` when set (a port in use is logged,
    not fatal: the worker routes without it)."""
    settings = MetricsSettings.from_env()
    engine = make_engine(None)  # the checkpoint metrics read the audit database
    try:
        return router_observability(engine, settings)
    except MetricsError as exc:
        log.error("%s", exc)
        return router_observability(engine, settings, serve=False)
