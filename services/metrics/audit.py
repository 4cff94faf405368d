"""Audit-chain metrics, read from the database when Prometheus scrapes.

=================================================  ========================================
``schakel_audit_last_checkpoint_timestamp_seconds``  creation time of the newest signed
                                                     checkpoint (Unix time)
``schakel_audit_checkpoint_age_seconds``           seconds since then
``schakel_audit_unsigned_records``                 records after the newest checkpoint
``schakel_audit_verification_ok``                  1 intact, 0 NOT intact (absent before the
                                                     first run)
``schakel_audit_verification_timestamp_seconds``   when the last verification finished
``schakel_audit_verification_findings``            findings of the last verification
``schakel_audit_verification_seconds``             how long it took
=================================================  ========================================

Verification is optional (one service per deployment runs it — the web workplace): with a
``verify`` function, a scrape that finds the last result older than ``verify_every_s`` starts
a new run in a background thread and reports the previous result meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from services.audit.verify import Verification
from services.database.tables.audit import audit_checkpoints, audit_records

log = logging.getLogger("schakel.metrics")


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    findings: int
    finished_at: float
    seconds: float


class AuditMetrics(Collector):
    """Checkpoint age and verification outcome of the audit store on ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        verify: Callable[[], Verification] | None = None,
        verify_every_s: float = 900.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._verify = verify
        self._every = verify_every_s
        self._wall = wall
        self._lock = threading.Lock()
        self._running: threading.Thread | None = None
        self.last: VerificationResult | None = None

    def register(self, registry: CollectorRegistry) -> AuditMetrics:
        registry.register(self)
        return self

    def run_verification(self) -> VerificationResult | None:
        """Verify the whole chain now (blocking) and remember the outcome."""
        if self._verify is None:
            return None
        started = time.monotonic()
        try:
            outcome = self._verify()
            ok, findings = outcome.ok, outcome.total_findings
        except Exception as exc:  # noqa: BLE001 - an unreadable store is a failed verification
            log.error("audit verification could not run: %s", exc.__class__.__name__)
            ok, findings = False, 1
        result = VerificationResult(ok, findings, self._wall(), time.monotonic() - started)
        with self._lock:
            self.last = result
        if not ok:
            log.error("audit verification failed with %d finding(s)", findings)
        return result

    def _maybe_start(self) -> None:
        if self._verify is None:
            return
        with self._lock:
            last = self.last
            running = self._running is not None and self._running.is_alive()
            due = last is None or self._wall() - last.finished_at >= self._every
            if running or not due:
                return
            self._running = threading.Thread(
                target=self.run_verification, name="schakel-audit-verify", daemon=True
            )
            self._running.start()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self._maybe_start()
        yield from self._checkpoint_families()
        last = self.last
        if last is not None:
            for name, text, value in (
                ("ok", "1 when the last verification found the log intact", float(last.ok)),
                ("timestamp_seconds", "When the last verification finished", last.finished_at),
                ("findings", "Findings of the last verification", float(last.findings)),
                ("seconds", "Duration of the last verification", last.seconds),
            ):
                yield GaugeMetricFamily(f"schakel_audit_verification_{name}", text, value=value)

    def _checkpoint_families(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self._engine.connect() as connection:
                newest = connection.execute(
                    select(audit_checkpoints.c.seq, audit_checkpoints.c.created_at)
                    .order_by(audit_checkpoints.c.seq.desc())
                    .limit(1)
                ).first()
                head = connection.execute(select(func.max(audit_records.c.seq))).scalar()
        except SQLAlchemyError as exc:
            log.warning("audit metrics: the store is not readable (%s)", exc.__class__.__name__)
            return
        signed_seq = 0
        if newest is not None:
            signed_seq = int(newest.seq)
            created: datetime = newest.created_at
            if created.tzinfo is None:
                created = created.replace(tzinfo=UTC)
            stamp = created.timestamp()
            yield GaugeMetricFamily(
                "schakel_audit_last_checkpoint_timestamp_seconds",
                "Creation time of the newest signed checkpoint",
                value=stamp,
            )
            yield GaugeMetricFamily(
                "schakel_audit_checkpoint_age_seconds",
                "Seconds since the newest signed checkpoint",
                value=max(0.0, self._wall() - stamp),
            )
        yield GaugeMetricFamily(
            "schakel_audit_unsigned_records",
            "Records after the newest signed checkpoint",
            value=float(max(0, int(head or 0) - signed_seq)),
        )
