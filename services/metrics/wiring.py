"""Each service's metrics and probes, put together from its dependencies.

The router worker serves them from :class:`~services.metrics.http.MetricsServer` (when
``SCHAKEL_METRICS_PORT`` is set); FastAPI services include
:func:`~services.metrics.http.health_routes` with what :func:`web_observability` (or their
own :class:`~services.metrics.health.Health`) builds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, ProcessCollector
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from services.audit.verify import Verification
from services.database.tables.audit import audit_records
from services.metrics.audit import AuditMetrics
from services.metrics.health import Check, Health, router_health
from services.metrics.http import MetricsServer
from services.metrics.router import RouterMetrics
from services.metrics.settings import MetricsSettings


@dataclass
class RouterObservability:
    registry: CollectorRegistry
    metrics: RouterMetrics
    health: Health
    server: MetricsServer | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def router_observability(
    engine: Engine, settings: MetricsSettings, *, serve: bool = True
) -> RouterObservability:
    """The router worker's registry (its metrics, the process's, the audit chain's), probes
    and — with ``serve`` and a port in ``settings`` — the server for them, started."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = RouterMetrics(registry)
    health = router_health(metrics.liveness)
    health.register(registry)
    AuditMetrics(engine).register(registry)
    made = RouterObservability(registry, metrics, health)
    if serve and settings.port is not None:
        made.server = MetricsServer(registry, health, settings.host, settings.port).start()
    return made


def database_check(engine: Engine) -> Check:
    """A readiness check: the audit table can be read (one primary-key look-up)."""
    probe = select(audit_records.c.seq).where(audit_records.c.seq == 0)

    def check() -> str | None:
        try:
            with engine.connect() as connection:
                connection.execute(probe)
        except SQLAlchemyError as exc:
            return f"audit database not reachable ({exc.__class__.__name__})"
        return None

    return check


def web_observability(
    engine: Engine,
    verify: Callable[[], Verification] | None,
    settings: MetricsSettings,
) -> tuple[CollectorRegistry, Health]:
    """The web workplace's registry and probes: live while it answers, ready while its
    database does; it also runs the periodic audit verification behind the metrics."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    health = Health(liveness={}, readiness={"store": database_check(engine)})
    health.register(registry)
    every = settings.verify_every_s
    AuditMetrics(engine, verify=verify if every > 0 else None, verify_every_s=every).register(
        registry
    )
    return registry, health
