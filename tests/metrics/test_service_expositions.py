"""The gateway's, the stacking worker's and the coverage worker's ``/metrics`` after real
traffic: counts add up, and no identifier from the traffic is a label value (the same scan
as the router's, :func:`tests.metrics.helpers.leaked`)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from services.audit.store import SqlAuditStore
from services.broker.settings import KafkaSettings
from services.config import Paths
from services.coverage.testing import MemoryCoverageStore
from services.coverage.worker import CoverageWorker, coverage_observability
from services.database.engine import make_engine
from services.demo.generator import generate
from services.gateway.app import create_gateway_app
from services.gateway.serve import covenant_keys
from services.metrics.gateway import GatewayMetrics
from services.metrics.settings import MetricsSettings
from services.metrics.testing import exposition, total, value
from services.metrics.workers import WorkerMetrics, running_check, started_check
from services.stacking.testing import MemoryStackingStore
from services.stacking.worker import CountedStep, TimedStackingStore
from tests.gateway.helpers import bearer, make_gateway, memory_broker, sqlite_engine
from tests.metrics.helpers import identifiers, leaked
from tests.router.helpers import NOW, policy_source, traffic
from tests.stacking.helpers import NOW as STACKING_NOW
from tests.stacking.helpers import make_hub, records

pytestmark = pytest.mark.timeout(120)


def gateway_exposition(signals: list[dict[str, Any]]) -> tuple[str, GatewayMetrics]:
    """Post ``signals`` (each by its source, in batches of 50; every batch twice, the second
    time with one signal's identifier changed after signing) to a gateway checking signatures;
    return its exposition."""
    engine = sqlite_engine()
    broker = memory_broker()
    sources = sorted({str(s["source"]) for s in signals})
    broker.admin.ensure_topics({f"signals.{p}": 2 for p in sources})
    metrics = GatewayMetrics()
    demo = dataclasses.replace(Paths.from_env({}), demo=True)  # the demo traffic: TEST keys
    gateway = make_gateway(engine, broker, keys=covenant_keys(demo), metrics=metrics)
    tokens = {p: gateway.tokens.issue("partner", p)[0] for p in sources}
    with TestClient(create_gateway_app(gateway)) as http:
        for source in sources:
            mine = [s for s in signals if s["source"] == source]
            for start in range(0, len(mine), 50):
                batch = mine[start : start + 50]
                tampered = dict(batch[0], data={**dict(batch[0]["data"]), "score": 0.5})  # type: ignore[arg-type]
                for body in (batch, [*batch, dict(tampered, id=f"t-{start}")]):
                    answer = http.post(
                        "/v1/signals",
                        content=orjson.dumps(body),
                        headers={**bearer(tokens[source]), "Content-Type": "application/json"},
                    )
                    assert answer.status_code == 202, answer.text
    engine.dispose()
    return exposition(metrics.registry), metrics


def test_the_gateway_exposition_counts_and_carries_no_identifier():
    signals = traffic(300, seed=13)
    text, metrics = gateway_exposition(signals)
    registry = metrics.registry
    name = "schakel_gateway_signals_total"
    assert total(registry, name, result="accepted") == len(signals)
    assert total(registry, name, result="duplicate") == len(signals)
    assert total(registry, name, result="rejected", code="bad_signature") > 0
    assert leaked(text, identifiers(signals)) == []
    # the scan finds a leak when there is one
    ean = str(next(s for s in signals if "ean" in s["data"])["data"]["ean"])  # type: ignore[index]
    assert leaked(text.replace('code="none"', f'code="{ean}"', 1), identifiers(signals))


def test_the_stacking_exposition_carries_no_identifier():
    signals = generate(1500, seed=5, start=datetime(2026, 8, 1, tzinfo=UTC), days=60).signals
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, "stacking")
    plain = make_hub().step()
    step = CountedStep(
        plain.registry, plain.policy, plain.rules, plain.extractor, plain.stacker, metrics=metrics
    )
    store = TimedStackingStore(MemoryStackingStore(), metrics)
    store.write(step.run(records(signals), STACKING_NOW).changes)
    assert total(registry, "schakel_stacking_alerts_total") > 0
    assert leaked(exposition(registry), identifiers(signals)) == []


def test_the_coverage_worker_counts_and_carries_no_identifier():
    signals = traffic(400, seed=17)
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry, "coverage")
    store = MemoryCoverageStore()
    worker = CoverageWorker(
        KafkaSettings.local("127.0.0.1:9"),
        store,
        policy_source(),
        [],
        lambda: NOW,
        metrics=metrics,
    )
    worker._count([orjson.dumps(s) for s in signals])  # one batch, without a broker
    name = "schakel_coverage_signals_total"
    used = value(registry, name, {"result": "used", "reason": "none"})
    assert used == worker.totals.counted > 0
    assert total(registry, name) == len(signals)
    assert value(registry, "schakel_coverage_store_write_seconds_count") == 1
    assert leaked(exposition(registry), identifiers(signals)) == []


def test_the_coverage_probes_on_its_metrics_server(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    SqlAuditStore(engine).create_schema()
    registry, health, server = coverage_observability(engine, MetricsSettings(port=0))
    assert server is not None
    state = WorkerMetrics(registry, "coverage").state
    health.liveness["loop"] = running_check(state, stuck_after_s=120.0, clock=lambda: 500.0)
    health.readiness["broker"] = started_check(state)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as http:
            assert http.get("/readyz").status_code == 503
            state.started = state.last_poll = 450.0
            assert http.get("/readyz").status_code == 200
            assert http.get("/healthz").status_code == 200
            state.last_poll = 300.0  # 200 s without a poll: stuck
            stuck = http.get("/healthz")
            assert stuck.status_code == 503
            assert stuck.json()["checks"]["loop"] == "last poll 200 s ago (limit 120 s)"
            assert "schakel_coverage_signals" in http.get("/metrics").text
    finally:
        server.stop()
        engine.dispose()
