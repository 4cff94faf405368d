"""The probes and the threaded metrics server, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.metrics.errors import MetricsError
from services.metrics.health import Health, router_health
from services.metrics.http import MetricsServer
from services.metrics.router import Liveness, RouterMetrics
from services.metrics.testing import fixed_health, value


@pytest.fixture
def served():
    servers: list[MetricsServer] = []

    def serve(registry: CollectorRegistry, health: Health) -> str:
        server = MetricsServer(registry, health, "127.0.0.1", 0).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield serve
    for server in servers:
        server.stop()


def test_metrics_healthz_and_readyz_over_http(served):
    registry = CollectorRegistry()
    RouterMetrics(registry).batches.inc()
    health = fixed_health(live={"loop": None}, ready={"broker": None, "partitions": "none yet"})
    health.register(registry)
    base = served(registry, health)
    with httpx.Client(timeout=5) as client:
        metrics = client.get(f"{base}/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "schakel_router_batches_total 1.0" in metrics.text
        assert 'schakel_check_ok{check="partitions",probe="ready"} 0.0' in metrics.text
        live = client.get(f"{base}/healthz")
        assert live.status_code == 200
        assert live.json() == {"status": "ok", "checks": {"loop": "ok"}}
        ready = client.get(f"{base}/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"broker": "ok", "partitions": "none yet"}
        assert client.get(f"{base}/other").status_code == 404


def test_a_port_in_use_is_an_error_naming_the_setting(served):
    registry = CollectorRegistry()
    base = served(registry, Health())
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(MetricsError, match="SCHAKEL_METRICS_PORT"):
        MetricsServer(registry, Health(), "127.0.0.1", port)


def test_router_probes_follow_the_loop_state():
    now = [1000.0]
    state = Liveness()
    health = router_health(state, stale_after_s=30, stuck_after_s=120, clock=lambda: now[0])
    assert not health.live().ok  # never polled
    assert health.ready().checks == {
        "broker": "broker last answered not yet",
        "store": "audit store last readable not yet",
        "partitions": "no partitions assigned",
    }
    state.last_poll = state.broker_ok = state.store_ok = 990.0
    state.assigned = 4
    assert health.live().ok and health.ready().ok
    now[0] = 1025.0  # broker and store checks 35 s old: not ready, still live
    assert health.ready().checks["broker"] == "broker last answered 35 s ago (limit 30 s)"
    assert health.live().ok
    now[0] = 1200.0  # no poll for 210 s: the loop is stuck
    assert not health.live().ok


def test_a_check_that_raises_fails_without_its_message():
    def broken() -> str | None:
        raise RuntimeError("871687884849956624")

    outcome = Health(readiness={"store": broken}).ready()
    assert not outcome.ok
    assert outcome.checks == {"store": "check raised RuntimeError"}
    registry = CollectorRegistry()
    Health(readiness={"store": broken}).register(registry)
    assert value(registry, "schakel_check_ok", {"probe": "ready", "check": "store"}) == 0.0
