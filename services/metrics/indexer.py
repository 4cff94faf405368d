"""The audit indexer's metrics and probes.

=============================================  ============================================
``schakel_audit_index_lag``                    records on the audit topic not yet indexed
                                               (last stable offset - position), per partition
``schakel_audit_index_lag_seconds``            how long the index has been behind
                                               (0 when caught up)
``schakel_audit_indexed_total``                records read from the audit topic
``schakel_audit_index_new_total``              records new to the SQL index (the rest were
                                               replays, dropped by record id)
``schakel_audit_index_refused_total``          audit-topic messages that were not audit-log
                                               messages (logged by offset)
=============================================  ============================================

Readiness fails while the index is more than ``max_lag_s`` behind, so a load balancer or an
operator sees an index that cannot keep up; liveness fails when the loop stopped polling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.metrics.health import Health


@dataclass
class IndexerState:
    """What the indexer loop last saw (``time.monotonic()`` seconds; 0: never)."""

    last_poll: float = 0.0
    lag_records: int = 0
    lag_seconds: float = 0.0


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.state = IndexerState()
        self.lag = Gauge(
            "schakel_audit_index_lag",
            "Audit-topic records not yet in the SQL audit index",
            ["partition"],
            registry=registry,
        )
        self.lag_seconds = Gauge(
            "schakel_audit_index_lag_seconds",
            "Age of the oldest audit-topic message not yet indexed (0 when caught up)",
            registry=registry,
        )
        self.indexed = Counter(
            "schakel_audit_indexed", "Audit records read from the audit topic", registry=registry
        )
        self.new = Counter(
            "schakel_audit_index_new", "Audit records new to the SQL index", registry=registry
        )
        self.refused = Counter(
            "schakel_audit_index_refused",
            "Audit-topic messages that were not audit-log messages",
            registry=registry,
        )

    def observed(self, lags: dict[int, int], lag_seconds: float) -> None:
        for partition, lag in lags.items():
            self.lag.labels(str(partition)).set(lag)
        self.lag_seconds.set(lag_seconds)
        self.state.lag_records = sum(lags.values())
        self.state.lag_seconds = lag_seconds
        self.state.last_poll = time.monotonic()


def indexer_health(
    state: IndexerState,
    *,
    max_lag_s: float = 30.0,
    stuck_after_s: float = 120.0,
    clock: Callable[[], float] = time.monotonic,
) -> Health:
    def polled() -> str | None:
        if state.last_poll == 0.0:
            return "last poll not yet"
        age = clock() - state.last_poll
        return None if age <= stuck_after_s else f"last poll {age:.0f} s ago"

    def behind() -> str | None:
        if state.lag_seconds <= max_lag_s:
            return None
        return (
            f"audit index {state.lag_seconds:.0f} s behind ({state.lag_records} records; "
            f"limit {max_lag_s:.0f} s)"
        )

    return Health(liveness={"loop": polled}, readiness={"loop": polled, "lag": behind})
