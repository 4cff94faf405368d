"""What the maintenance service exports on ``/metrics`` and answers on ``/healthz``/``/readyz``.

Counters of what its ticks did (topics recreated, feed messages re-delivered per feed topic,
outbox entries marked consumed, ticks by outcome), the time of the last successful tick, and
per recipient the number of feed messages in the outbox that its consumer group has not yet
committed past (``schakel_outbox_unconsumed``). Labels are topic and recipient *names* from
the covenants, passed through :func:`services.metrics.labels.safe` — never an identifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector
from sqlalchemy import Engine, false, func, select

from services.database.tables.audit import feed_outbox
from services.hub.maintenance import MaintenanceReport
from services.metrics.health import Health
from services.metrics.labels import safe


def unconsumed_counts(engine: Engine) -> dict[str, int]:
    """Recipient → outbox entries not yet consumed (one indexed GROUP BY on the outbox)."""
    statement = (
        select(feed_outbox.c.recipient, func.count())
        .where(feed_outbox.c.consumed == false())
        .group_by(feed_outbox.c.recipient)
    )
    with engine.connect() as connection:
        return {str(recipient): int(count) for recipient, count in connection.execute(statement)}


class MaintenanceMetrics:
    """The maintenance service's metrics on ``registry`` and the state its probes read."""

    def __init__(
        self,
        registry: CollectorRegistry,
        recipients: Iterable[str],
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._recipients = sorted(recipients)
        self._clock = clock
        self._monotonic = monotonic
        self.last_attempt = monotonic()
        """Monotonic time the last tick started or ended (start-up before the first)."""
        self.last_success = 0.0
        """Monotonic time the last tick succeeded (0: none yet)."""
        self.redelivered = Counter(
            "schakel_maintenance_redelivered",
            "Feed messages produced again after the broker lost them",
            ["topic"],
            registry=registry,
        )
        self.recreated = Counter(
            "schakel_maintenance_topics_recreated",
            "Topics the broker had lost and the maintenance service created again",
            registry=registry,
        )
        self.consumed = Counter(
            "schakel_maintenance_consumed",
            "Outbox entries marked consumed (below the recipient group's committed offset)",
            registry=registry,
        )
        self.ticks = Counter(
            "schakel_maintenance_ticks",
            "Maintenance ticks by outcome",
            ["result"],
            registry=registry,
        )
        self.last_success_time = Gauge(
            "schakel_maintenance_last_success_timestamp_seconds",
            "Unix time of the last successful maintenance tick",
            registry=registry,
        )
        self.unconsumed = Gauge(
            "schakel_outbox_unconsumed",
            "Feed messages in the outbox the recipient's consumer group has not committed past",
            ["recipient"],
            registry=registry,
        )
        for result in ("ok", "failed"):
            self.ticks.labels(result=result)

    def started(self) -> None:
        self.last_attempt = self._monotonic()

    def record(self, report: MaintenanceReport) -> None:
        """Count what one tick did (recreated topics, re-delivered and consumed entries)."""
        self.recreated.inc(len(report.recreated))
        self.consumed.inc(report.consumed)
        for topic, count in report.redelivered_by_topic.items():
            self.redelivered.labels(topic=safe(topic)).inc(count)

    def succeeded(self, backlog: Mapping[str, int]) -> None:
        """A tick succeeded: set the backlog per recipient (0 for those without any)."""
        per_label: dict[str, int] = dict.fromkeys(map(safe, self._recipients), 0)
        for recipient, count in backlog.items():
            label = safe(recipient)
            per_label[label] = per_label.get(label, 0) + count
        for label, count in per_label.items():
            self.unconsumed.labels(recipient=label).set(count)
        self.ticks.labels(result="ok").inc()
        self.last_success = self.last_attempt = self._monotonic()
        self.last_success_time.set(self._clock())

    def failed(self) -> None:
        self.ticks.labels(result="failed").inc()
        self.last_attempt = self._monotonic()

    def health(self, interval_s: float) -> Health:
        """Live while ticks keep starting or ending (a long re-delivery included); ready while
        the last success — broker and audit database both answered — is recent."""
        stuck_after = max(600.0, 10 * interval_s)
        stale_after = max(60.0, 3 * interval_s)

        def recent(at: float, what: str, limit: float) -> str | None:
            if at == 0.0:
                return f"{what} not yet"
            age = self._monotonic() - at
            return None if age <= limit else f"{what} {age:.0f} s ago (limit {limit:.0f} s)"

        return Health(
            liveness={"loop": lambda: recent(self.last_attempt, "last tick", stuck_after)},
            readiness={
                "tick": lambda: recent(self.last_success, "last successful tick", stale_after)
            },
        )


def maintenance_registry(
    recipients: Iterable[str], interval_s: float
) -> tuple[CollectorRegistry, MaintenanceMetrics, Health]:
    """A registry with the process's metrics, the maintenance metrics and its probes."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    metrics = MaintenanceMetrics(registry, recipients)
    health = metrics.health(interval_s)
    health.register(registry)
    return registry, metrics, health
