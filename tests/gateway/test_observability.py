"""The gateway's /metrics, /healthz and /readyz over real HTTP (uvicorn on 127.0.0.1, the
in-memory broker behind it): counters per partner/type/result, 429s per partner, request
latency, and readiness following the broker and the store. ``/metrics`` comes from the
gateway's own metrics listener (:func:`services.gateway.serve.metrics_server`), never from the
port partners use."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from services.database.engine import make_engine
from services.gateway.app import create_gateway_app
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.probes import BrokerWatch, gateway_health, watching
from services.gateway.serve import metrics_server
from services.gateway.tables import prepare_tables
from services.gateway.testing import MemoryBroker
from services.metrics.gateway import GatewayMetrics
from services.metrics.settings import MetricsSettings
from tests.gateway.helpers import (
    Monotonic,
    bearer,
    issue_all,
    make_gateway,
    memory_broker,
    serving,
    signal,
)

pytestmark = pytest.mark.timeout(60)

TYPE = "energy.consumption_anomaly.v1"


@dataclass
class Served:
    url: str
    metrics_url: str
    gateway: Gateway
    broker: MemoryBroker
    tokens: dict[str, str]
    monotonic: Monotonic


@pytest.fixture
def file_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    prepare_tables(engine)  # the audit tables too: readiness reads them
    yield engine
    engine.dispose()


@pytest.fixture
def served(file_engine: Engine) -> Iterator[Served]:
    broker = memory_broker()
    metrics = GatewayMetrics()
    watch = BrokerWatch(broker, every_s=0.05, stale_after_s=0.5)
    health = gateway_health(file_engine, watch)
    health.register(metrics.registry)
    monotonic = Monotonic()
    gateway = make_gateway(
        file_engine,
        broker,
        settings=GatewaySettings(rate=1, burst=3),
        monotonic=monotonic,
        metrics=metrics,
        health=health,
    )
    tokens = issue_all(gateway.tokens)
    assert metrics_server(gateway, MetricsSettings()) is None  # no port: not served
    listener = metrics_server(gateway, MetricsSettings(port=0))  # a free port, for the test
    assert listener is not None
    try:
        with serving(create_gateway_app(gateway, lifespan=watching(watch))) as url:
            metrics_url = f"http://127.0.0.1:{listener.port}"
            yield Served(url, metrics_url, gateway, broker, tokens, monotonic)
    finally:
        listener.stop()


def scrape(served: Served) -> str:
    return httpx.get(f"{served.metrics_url}/metrics", timeout=10).text


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str):
    return found.get((name, frozenset(labels.items())))


def wait_ready(http: httpx.Client, want: int, timeout: float = 10.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get("/readyz")
        if answer.status_code == want or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_signals_are_counted_per_partner_type_and_result(served: Served):
    liander = bearer(served.tokens["liander"])
    with httpx.Client(base_url=served.url, timeout=10) as http:
        first = http.post("/v1/signals", json=[signal(1), signal(2, score="high")], headers=liander)
        served.monotonic.advance(10)  # the rate limit refills
        again = http.post("/v1/signals", json=[signal(1), signal(1)], headers=liander)
        assert first.status_code == again.status_code == 202
        unknown = dict(signal(3), type="energy.teleport.v1")
        http.post("/v1/signals", json=unknown, headers=liander)
        found = samples(scrape(served))

    name = "schakel_gateway_signals_total"
    common = {"partner": "liander", "type": TYPE}
    assert sample(found, name, **common, result="accepted", code="none") == 1
    assert sample(found, name, **common, result="duplicate", code="none") == 2
    assert sample(found, name, **common, result="rejected", code="schema_violation") == 1
    assert (
        sample(
            found, name, partner="liander", type="invalid", result="rejected", code="unknown_type"
        )
        == 1
    )
    timed = sample(
        found,
        "schakel_gateway_request_seconds_count",
        route="v1.signals",
        method="post",
        status="202",
    )
    assert timed == 2
    assert sample(found, "schakel_check_ok", probe="ready", check="store") == 1


def test_429s_are_counted_per_partner(served: Served):
    with httpx.Client(base_url=served.url, timeout=10) as http:
        codes = [
            http.post(
                "/v1/signals", json=signal(n), headers=bearer(served.tokens["vitens"])
            ).status_code
            for n in range(5)
        ]
        found = samples(scrape(served))
    assert codes.count(429) == 2, codes
    assert (
        sample(found, "schakel_gateway_rate_limited_total", kind="partner", principal="vitens") == 2
    )
    assert (
        sample(
            found,
            "schakel_gateway_request_seconds_count",
            route="v1.signals",
            method="post",
            status="429",
        )
        == 2
    )
    assert (
        sample(found, "schakel_gateway_rate_limited_total", kind="partner", principal="liander")
        is None
    )


def test_readiness_follows_the_broker_and_the_store(served: Served, file_engine: Engine):
    with httpx.Client(base_url=served.url, timeout=10) as http:
        assert http.get("/healthz").json() == {"status": "ok", "checks": {}}
        ready = wait_ready(http, 200)
        assert ready.json() == {"status": "ok", "checks": {"broker": "ok", "store": "ok"}}

        served.broker.reachable = False
        down = wait_ready(http, 503)
        assert down.status_code == 503
        assert "broker last answered" in down.json()["checks"]["broker"]
        assert http.get("/healthz").status_code == 200, "a broker outage is no reason to restart"

        served.broker.reachable = True
        assert wait_ready(http, 200).status_code == 200
        with file_engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE audit_records")
        gone = http.get("/readyz")
        assert gone.status_code == 503
        assert gone.json()["checks"]["store"].startswith("audit database not reachable")


def test_probes_and_metrics_need_no_token_and_are_not_timed(served: Served):
    with httpx.Client(base_url=served.url, timeout=10) as http:
        for path in ("/readyz", "/healthz", "/readyz"):
            assert http.get(path).status_code in (200, 503)
        assert http.get("/metrics", headers=bearer(served.tokens["liander"])).status_code == 404
        found = samples(scrape(served))
    routes = {dict(labels).get("route") for (name, labels) in found if "request_seconds" in name}
    assert routes <= {None}, routes
