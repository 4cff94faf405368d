"""Reading metrics back in tests (this package's and other services'), without HTTP.

:func:`value` is one sample of a registry (what Prometheus would scrape), :func:`exposition`
the whole text format; :func:`fixed_health` builds a :class:`Health` whose checks return
given answers, a double for services whose real checks need a broker or database.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, generate_latest

from services.metrics.health import Check, Health


def value(
    registry: CollectorRegistry, name: str, labels: Mapping[str, str] | None = None
) -> float | None:
    """The sample ``name`` with exactly ``labels`` (``None`` when there is none)."""
    return registry.get_sample_value(name, dict(labels or {}))


def total(registry: CollectorRegistry, name: str, **match: str) -> float:
    """The sum of every sample ``name`` whose labels include ``match``."""
    found = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in match.items()):
                found += sample.value
    return found


def exposition(registry: CollectorRegistry) -> str:
    """The registry in the Prometheus text format, as ``/metrics`` serves it."""
    return generate_latest(registry).decode()


def fixed_health(
    live: Mapping[str, str | None] | None = None, ready: Mapping[str, str | None] | None = None
) -> Health:
    """A :class:`Health` whose checks answer as given (``None``: ok, text: the problem)."""

    def answer(problem: str | None) -> Check:
        return lambda: problem

    return Health(
        liveness={name: answer(p) for name, p in (live or {}).items()},
        readiness={name: answer(p) for name, p in (ready or {}).items()},
    )
