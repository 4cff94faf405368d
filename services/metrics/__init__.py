"""Prometheus metrics and health probes of every hub service (``/metrics``, ``/healthz``,
``/readyz``).

Nothing here touches the global default registry: a service makes its own
``CollectorRegistry`` and passes it in.

* :class:`~services.metrics.router.RouterMetrics` — the router loop's counters, latency
  histograms and consumer liveness per partition;
* :class:`~services.metrics.audit.AuditMetrics` — checkpoint age and verification outcome;
* :class:`~services.metrics.gateway.GatewayMetrics` — the HTTPS gateway's signals, 429s and
  request latency;
* :class:`~services.metrics.workers.WorkerMetrics` — the stacking and coverage workers' signals
  used and skipped, alerts and store writes;
* :class:`~services.metrics.health.Health` — named liveness/readiness checks;
* :func:`~services.metrics.http.health_routes` (FastAPI) and
  :class:`~services.metrics.http.MetricsServer` (a small threaded server) serve them;
* :mod:`services.metrics.labels` keeps identifiers out of label values.
"""

from __future__ import annotations

from services.metrics.errors import MetricsError
from services.metrics.health import Health, Outcome
from services.metrics.labels import safe

__all__ = ["Health", "MetricsError", "Outcome", "safe"]
