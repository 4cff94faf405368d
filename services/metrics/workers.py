"""Metrics of the stacking and coverage workers (``<worker>`` is ``stacking`` or ``coverage``).

=================================================  ===========================================
``schakel_<worker>_signals_total{result,reason}``  signals read: ``used`` (reason ``none``) or
                                                   ``skipped`` with the reason's name
``schakel_<worker>_alerts_total{change}``          alerts ``raised`` (new in the batch) or
                                                   ``updated`` (stacking)
``schakel_<worker>_store_write_seconds``           one batch's write to the worker's store
``schakel_<worker>_batches_total``                 batches processed
``schakel_<worker>_last_batch_timestamp_seconds``  when the last batch was done (Unix time)
=================================================  ===========================================

Reasons are names from code (rejection codes, ``not_for_stacking``, ``no_location`` ...),
passed through :func:`~services.metrics.labels.safe` all the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.metrics.health import Check
from services.metrics.labels import NONE, safe
from services.metrics.router import WRITE_BUCKETS

WORKERS = ("stacking", "coverage")


@dataclass
class WorkerState:
    """What the worker last managed, in ``time.monotonic()`` seconds (0: never)."""

    started: float = 0.0
    last_poll: float = 0.0
    stopped: bool = False


class WorkerMetrics:
    """One worker's collectors on ``registry``, and the state its probes read."""

    def __init__(
        self, registry: CollectorRegistry, worker: str, *, wall: Callable[[], float] = time.time
    ) -> None:
        if worker not in WORKERS:
            raise ValueError(f"worker must be one of {', '.join(WORKERS)}")
        self._wall = wall
        self.state = WorkerState()
        prefix = f"schakel_{worker}"
        self.signals = Counter(
            f"{prefix}_signals",
            "Signals read, used or skipped",
            ["result", "reason"],
            registry=registry,
        )
        self.alerts = Counter(
            f"{prefix}_alerts", "Alerts raised or updated", ["change"], registry=registry
        )
        self.store_write = Histogram(
            f"{prefix}_store_write_seconds",
            "One batch's write to the worker's store",
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.batches = Counter(f"{prefix}_batches", "Batches processed", registry=registry)
        self.last_batch = Gauge(
            f"{prefix}_last_batch_timestamp_seconds",
            "When the last batch was done (Unix time)",
            registry=registry,
        )

    def counted(self, used: int, skipped: Mapping[str, int]) -> None:
        """One batch: ``used`` signals, and ``skipped`` ones per reason."""
        if used:
            self.signals.labels("used", NONE).inc(used)
        for reason, count in skipped.items():
            if count:
                self.signals.labels("skipped", safe(reason)).inc(count)
        self.batches.inc()
        self.last_batch.set(self._wall())

    def alert(self, *, raised: bool) -> None:
        """An alert written: ``raised`` in this batch, or an earlier one ``updated``."""
        self.alerts.labels("raised" if raised else "updated").inc()

    def written(self, seconds: float) -> None:
        self.store_write.observe(seconds)

    def polled(self) -> None:
        self.state.last_poll = time.monotonic()


def running_check(
    state: WorkerState,
    *,
    stuck_after_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Check:
    """Liveness: the worker's loop started and has not stopped (and, with ``stuck_after_s``,
    polled the broker within that many seconds)."""

    def check() -> str | None:
        if state.stopped:
            return "the worker loop stopped"
        if state.started == 0.0:
            return None  # starting up: not a reason to restart it
        if stuck_after_s is not None and state.last_poll:
            age = clock() - state.last_poll
            if age > stuck_after_s:
                return f"last poll {age:.0f} s ago (limit {stuck_after_s:.0f} s)"
        return None

    return check


def started_check(state: WorkerState) -> Check:
    """Readiness: the worker's Kafka clients started (the broker answered) and it runs."""

    def check() -> str | None:
        if state.stopped:
            return "the worker loop stopped"
        return None if state.started else "not connected to the broker yet"

    return check
