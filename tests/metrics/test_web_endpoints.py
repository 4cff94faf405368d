"""/metrics, /healthz and /readyz on the web workplace (no sign-in; no identifiers)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from services.audit.store import SqlAuditStore
from services.database.engine import make_engine
from services.keys.testing import MemoryKeyStore
from services.metrics.settings import MetricsSettings
from services.web.app import create_web_app
from services.web.context import WebSettings


def make_client(tmp_path, every: float = 0.0) -> tuple[TestClient, object]:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    SqlAuditStore(engine).create_schema()
    app = create_web_app(
        engine,
        MemoryKeyStore.for_tests(),
        WebSettings(secret=b"s" * 32, kdf_cost=8),
        metrics=MetricsSettings(verify_every_s=every),
    )
    return TestClient(app, follow_redirects=False), engine


def test_probes_and_metrics_answer_without_a_session(tmp_path):
    client, engine = make_client(tmp_path)
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"store": "ok"}}
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert 'schakel_check_ok{check="store",probe="ready"} 1.0' in metrics.text
    assert "schakel_audit_unsigned_records 0.0" in metrics.text
    assert metrics.headers["cache-control"] == "no-store"
    assert client.get("/exchanges").status_code in (303, 401)  # pages still need sign-in
    engine.dispose()  # type: ignore[attr-defined]


def test_not_ready_when_the_database_is_gone(tmp_path):
    client, engine = make_client(tmp_path)
    engine.dispose()  # type: ignore[attr-defined]
    (tmp_path / "audit.db").write_bytes(b"not a database" * 100)
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"].startswith("audit database not reachable")
        assert client.get("/healthz").status_code == 200
    finally:
        engine.dispose()  # type: ignore[attr-defined]


def test_the_scrape_runs_the_periodic_verification(tmp_path):
    client, engine = make_client(tmp_path, every=3600)
    client.get("/metrics")
    registry = client.app.state.metrics_registry  # type: ignore[attr-defined]
    for _ in range(100):  # the first scrape started it in the background
        if registry.get_sample_value("schakel_audit_verification_ok") is not None:
            break
        time.sleep(0.05)
    assert registry.get_sample_value("schakel_audit_verification_ok") == 1.0
    engine.dispose()  # type: ignore[attr-defined]
