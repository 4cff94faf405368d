"""The RIEC workplace's audit records that wait for the audit store
(:mod:`services.riec.audit_outbox`), exported by the web workplace.

==============================================  ==============================================
``schakel_riec_audit_pending``                  workplace audit records staged with their
                                                action and not yet in the audit store (read
                                                from the database at each scrape)
``schakel_riec_audit_pending_oldest_seconds``   how long the oldest of them has waited (0 when
                                                none wait)
``schakel_riec_audit_flush_failures_total``     flushes the audit store refused, by the
                                                error's type name (``error``)
==============================================  ==============================================

A record that waits is not lost — the next action or the feed reader writes it — but until
then the audit log does not hold it; the alert ``SchakelRiecAuditPending`` fires when one has
waited 5 minutes. No label or value names an item, a case or a person.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from services.metrics.labels import safe

_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
Waiting = Callable[[], tuple[int, datetime | None]]
"""How many records wait, and the time of the oldest (``None``: none, or unknown)."""


class RiecAuditMetrics:
    """The workplace's waiting audit records on ``registry``; ``waiting`` reads them."""

    def __init__(
        self,
        registry: CollectorRegistry,
        waiting: Waiting,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.failures = Counter(
            "schakel_riec_audit_flush_failures",
            "RIEC workplace audit flushes the audit store refused",
            ["error"],
            registry=registry,
        )
        registry.register(_Waiting(waiting, wall))

    def failed(self, error: str) -> None:
        """One flush refused, with ``error``: the exception's type name."""
        self.failures.labels(safe(_WORD_START.sub("_", error).lower())).inc()


class _Waiting(Collector):
    def __init__(self, waiting: Waiting, wall: Callable[[], float]) -> None:
        self._waiting = waiting
        self._wall = wall

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count, oldest = self._waiting()
        age = 0.0 if oldest is None else max(0.0, self._wall() - oldest.timestamp())
        yield GaugeMetricFamily(
            "schakel_riec_audit_pending",
            "RIEC workplace audit records not yet in the audit store",
            value=count,
        )
        yield GaugeMetricFamily(
            "schakel_riec_audit_pending_oldest_seconds",
            "How long the oldest waiting RIEC workplace audit record has waited",
            value=age,
        )
