"""The stacking worker's metrics and probes: signals used and skipped per reason, alerts raised
and updated, store write latency, and /healthz and /readyz on its metrics server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.audit.store import SqlAuditStore
from services.database.engine import make_engine
from services.demo.generator import generate
from services.metrics.settings import MetricsSettings
from services.metrics.testing import total, value
from services.metrics.workers import WorkerMetrics
from services.router.topics import signals_topic
from services.stacking.batch import Record
from services.stacking.testing import MemoryStackingStore
from services.stacking.worker import CountedStep, TimedStackingStore, stacking_observability
from tests.stacking.helpers import NOW, make_hub, records

pytestmark = pytest.mark.timeout(60)

TRAFFIC = generate(1500, seed=5, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)


def counted_step(metrics: WorkerMetrics) -> CountedStep:
    hub = make_hub()
    plain = hub.step()
    return CountedStep(
        plain.registry, plain.policy, plain.rules, plain.extractor, plain.stacker, metrics=metrics
    )


def test_used_and_skipped_signals_are_counted_per_reason():
    registry = CollectorRegistry()
    step = counted_step(WorkerMetrics(registry, "stacking"))
    good = next(e for e in TRAFFIC.signals if (e["source"], e["type"]) in step.policy.stacking)
    data = dict(good["data"], municipality="GM0363")  # changed after signing
    bad = [
        Record(signals_topic("pwn"), b"{not json"),
        Record(signals_topic("not-" + good["source"]), orjson.dumps(good)),
        Record(signals_topic(good["source"]), orjson.dumps(dict(good, data=data))),
    ]
    stacked = step.run([*records(TRAFFIC.signals[:400]), *bad], NOW)

    name = "schakel_stacking_signals_total"
    assert value(registry, name, {"result": "used", "reason": "none"}) == stacked.used > 0
    assert total(registry, name) == stacked.signals == 403
    assert total(registry, name, result="skipped") == sum(stacked.skipped.values())
    assert value(registry, name, {"result": "skipped", "reason": "bad_signature"}) == 1
    assert value(registry, name, {"result": "skipped", "reason": "wrong_source"}) == 1
    assert value(registry, name, {"result": "skipped", "reason": "unparseable"}) == 1
    assert (value(registry, name, {"result": "skipped", "reason": "not_for_stacking"}) or 0) > 0
    assert value(registry, "schakel_stacking_batches_total") == 1


def test_alerts_raised_and_updated_and_the_store_write_are_measured():
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, "stacking")
    step = counted_step(metrics)
    store = TimedStackingStore(MemoryStackingStore(), metrics)
    first = step.run(records(TRAFFIC.signals[:1000]), NOW)
    store.write(first.changes)
    raised = len(first.changes.alerts)
    assert raised > 0, "the demo traffic stacks some locations"
    later = step.run(records(TRAFFIC.signals[1000:]), NOW + timedelta(days=1))
    store.write(later.changes)
    updated = [a for a in later.changes.alerts.values() if a.raised_at < a.updated_at]
    assert all(a.revision > 1 for a in updated)
    name = "schakel_stacking_alerts_total"
    assert value(registry, name, {"change": "raised"}) == raised + len(later.changes.alerts) - len(
        updated
    )
    assert (value(registry, name, {"change": "updated"}) or 0) == len(updated)
    assert value(registry, "schakel_stacking_store_write_seconds_count") == 2
    assert len(store.unpublished()) == len(store.alerts())


def test_probes_on_the_metrics_server(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    SqlAuditStore(engine).create_schema()
    observed = stacking_observability(engine, MetricsSettings(port=0))
    assert observed.server is not None
    url = f"http://127.0.0.1:{observed.server.port}"
    try:
        with httpx.Client(base_url=url, timeout=5) as http:
            assert http.get("/healthz").status_code == 200
            waiting = http.get("/readyz")
            assert waiting.status_code == 503
            assert waiting.json()["checks"]["broker"] == "not connected to the broker yet"
            observed.metrics.state.started = 1.0
            assert http.get("/readyz").json() == {
                "status": "ok",
                "checks": {"broker": "ok", "store": "ok"},
            }
            observed.metrics.state.stopped = True
            assert http.get("/healthz").status_code == 503
            assert "schakel_stacking_signals" in http.get("/metrics").text
    finally:
        observed.stop()
        engine.dispose()
    assert stacking_observability(engine, MetricsSettings()).server is None
