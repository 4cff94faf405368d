"""The HTTPS gateway's metrics.

======================================================  =====================================
``schakel_gateway_signals_total{partner,type,result,    signals received, per outcome:
code}``                                                 ``accepted``, ``duplicate`` (a re-send
                                                        answered from the idempotency record,
                                                        or repeated in one batch) or
                                                        ``rejected`` with its problem ``code``
``schakel_gateway_rate_limited_total{kind,principal}``  requests refused with 429
``schakel_gateway_request_seconds{route,method,         request duration, until the whole
status}``                                               answer was sent
======================================================  =====================================

Label values are names only (:func:`~services.metrics.labels.safe`): a signal type the schema
registry does not know is ``invalid``, a path the gateway does not serve is ``other``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from services.metrics.labels import NONE, safe

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 300.0)
INVALID_TYPE = "invalid"
RESULTS = ("accepted", "duplicate", "rejected")


class GatewayMetrics:
    """The gateway's collectors on ``registry`` (one per app; never the global registry)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.signals = Counter(
            "schakel_gateway_signals",
            "Signals received over HTTPS, by outcome",
            ["partner", "type", "result", "code"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "schakel_gateway_rate_limited",
            "Requests refused with 429 Too Many Requests",
            ["kind", "principal"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "schakel_gateway_request_seconds",
            "Gateway requests, from the first byte read to the last byte of the answer sent",
            ["route", "method", "status"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )

    def signal(self, partner: str, kind: str | None, result: str, code: str | None = None) -> None:
        """One signal's outcome; ``kind`` is its type when the registry knows it, else None."""
        if result not in RESULTS:
            raise ValueError(f"result must be one of {', '.join(RESULTS)}")
        self.signals.labels(
            safe(partner),
            safe(kind) if kind is not None else INVALID_TYPE,
            result,
            safe(code) if code else NONE,
        ).inc()

    def limited(self, kind: str, principal: str) -> None:
        self.rate_limited.labels(safe(kind), safe(principal)).inc()

    def request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(
            safe(route.strip("/").replace("/", ".")) if route else NONE,
            safe(method.lower()),
            str(status),
        ).observe(seconds)
