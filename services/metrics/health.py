"""Liveness and readiness as named checks, for ``/healthz`` and ``/readyz``.

A check is a function returning ``None`` when all is well or a short sentence saying what is
wrong (names only, never an identifier). *Liveness* asks "is this process still working, or
should it be restarted?"; *readiness* asks "can it do its job right now?" (broker reachable,
store open, partitions assigned). The outcome of every check is also exported as the gauge
``schakel_check_ok{probe, check}`` so alerts and dashboards see what the probes see.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.metrics.router import Liveness

Check = Callable[[], str | None]


@dataclass(frozen=True)
class Outcome:
    """The result of one probe: ``ok`` and, per check, ``None`` or what is wrong."""

    ok: bool
    checks: dict[str, str | None]

    def to_json(self) -> dict[str, object]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": {name: problem or "ok" for name, problem in self.checks.items()},
        }


@dataclass
class Health:
    """Named liveness and readiness checks of one service."""

    liveness: dict[str, Check] = field(default_factory=dict)
    readiness: dict[str, Check] = field(default_factory=dict)

    def live(self) -> Outcome:
        return _run(self.liveness)

    def ready(self) -> Outcome:
        return _run(self.readiness)

    def register(self, registry: CollectorRegistry) -> None:
        """Export every check's outcome as ``schakel_check_ok`` on ``registry``."""
        registry.register(_HealthCollector(self))


def _run(checks: dict[str, Check]) -> Outcome:
    results: dict[str, str | None] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as exc:  # noqa: BLE001 - a failing check is a finding, not a crash
            results[name] = f"check raised {exc.__class__.__name__}"
    return Outcome(all(problem is None for problem in results.values()), results)


class _HealthCollector(Collector):
    def __init__(self, health: Health) -> None:
        self._health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "schakel_check_ok", "1 when the health check passes", labels=["probe", "check"]
        )
        for probe, outcome in (("live", self._health.live()), ("ready", self._health.ready())):
            for name, problem in outcome.checks.items():
                family.add_metric([probe, name], 1.0 if problem is None else 0.0)
        yield family


def router_health(
    state: Liveness,
    *,
    stale_after_s: float = 30.0,
    stuck_after_s: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
) -> Health:
    """The router worker's probes, read from the state its loop keeps (see RouterMetrics).

    Live: the loop polled within ``stuck_after_s`` (a batch stuck longer means restart it).
    Ready: the broker answered and the store was readable within ``stale_after_s``, and the
    worker owns at least one partition.
    """

    def recent(at: float, what: str, limit: float) -> str | None:
        if at == 0.0:
            return f"{what} not yet"
        age = clock() - at
        return None if age <= limit else f"{what} {age:.0f} s ago (limit {limit:.0f} s)"

    return Health(
        liveness={"loop": lambda: recent(state.last_poll, "last poll", stuck_after_s)},
        readiness={
            "broker": lambda: recent(state.broker_ok, "broker last answered", stale_after_s),
            "store": lambda: recent(state.store_ok, "audit store last readable", stale_after_s),
            "partitions": lambda: None if state.assigned else "no partitions assigned",
        },
    )
