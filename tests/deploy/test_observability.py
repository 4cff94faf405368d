"""Alert rules and the Grafana dashboard use only metrics the code really exports."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.verify import Verification
from services.database.engine import make_engine
from services.hub.maintenance_metrics import maintenance_registry
from services.keys.testing import MemoryKeyStore
from services.metrics.audit import AuditMetrics
from services.metrics.gateway import GatewayMetrics
from services.metrics.health import router_health
from services.metrics.riec import RiecAuditMetrics
from services.metrics.router import RouterMetrics
from services.metrics.settings import MetricsSettings
from services.metrics.wiring import web_observability
from services.metrics.workers import WORKERS, WorkerMetrics
from tests.deploy.helpers import DEPLOY
from tests.metrics.helpers import routed_batch

_METRIC = re.compile(r"\b(schakel_[a-z0-9_]+)")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> set[str]:
    """Every sample name the hub's registries produce once they have seen traffic."""
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry)
    metrics.polled([TopicPartition("signals.liander", 0)])
    batch = routed_batch(40)
    dead = [d.value for d in batch.routed.dead_letters]
    metrics.batch_done(batch.records, batch.routed.audit, dead, lambda tp: 100)
    metrics.audit_written(0.01)
    router_health(metrics.liveness).register(registry)
    path = tmp_path_factory.mktemp("audit") / "audit.db"
    engine = make_engine(f"sqlite:///{path}")
    store = SqlAuditStore(engine, Checkpointer(KeyStoreSigner(MemoryKeyStore.for_tests())))
    store.create_schema()
    store.record(batch.routed.audit, [])
    verification = Verification(1, 1, 1, 1, 0, (), 0)
    AuditMetrics(engine, verify=lambda: verification).register(registry).run_verification()
    web_registry, _ = web_observability(engine, None, MetricsSettings(verify_every_s=0))
    RiecAuditMetrics(web_registry, lambda: (1, None)).failed("AuditStoreError")
    maintenance, _, _ = maintenance_registry(["riec-nh"], interval_s=5.0)
    gateway = GatewayMetrics()
    gateway.signal("liander", "energy.consumption_anomaly.v1", "accepted")
    gateway.limited("partner", "liander")
    gateway.request("/v1/signals", "POST", 202, 0.01)
    workers = CollectorRegistry()
    for worker in WORKERS:
        counted = WorkerMetrics(workers, worker)
        counted.counted(1, {"no_location": 1})
        counted.alert(raised=True)
        counted.written(0.01)
    names = {
        sample.name
        for source in (registry, web_registry, maintenance, gateway.registry, workers)
        for family in source.collect()
        for sample in family.samples
    }
    store.close()
    engine.dispose()
    return names


def scrape_jobs() -> set[str]:
    config = yaml.safe_load((DEPLOY / "compose" / "prometheus.yml").read_text())
    return {job["job_name"] for job in config["scrape_configs"]}


def used_in(text: str) -> set[str]:
    return set(_METRIC.findall(text))


def test_alert_rules_are_well_formed_and_use_exported_metrics(exported):
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    seen = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert rule["alert"].startswith("Schakel")
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["runbook"].startswith("docs/operations.md#")
            names = used_in(rule["expr"])
            jobs = set(re.findall(r'job="([^"]+)"', rule["expr"]))
            assert names or jobs, rule["alert"]  # Prometheus's own `up` needs a real job
            assert jobs <= scrape_jobs(), rule["alert"]
            assert names <= exported, f"{rule['alert']}: {names - exported}"
            seen |= names
    assert {"schakel_audit_verification_ok", "schakel_consumer_lag"} <= seen


def test_runbook_anchors_exist_in_the_operations_guide():
    guide = (DEPLOY.parent / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in guide.splitlines()
        if line.startswith("#")
    }
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            anchor = rule["annotations"]["runbook"].split("#", 1)[1]
            assert anchor in anchors, anchor


def test_dashboard_is_grafana_json_on_exported_metrics(exported):
    dashboard = json.loads((DEPLOY / "grafana" / "schakel.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(exprs) >= 10
    used = set().union(*(used_in(expr) for expr in exprs))
    assert used <= exported, used - exported
    for required in (
        "schakel_signals_in_total",
        "schakel_decisions_total",
        "schakel_withheld_total",
        "schakel_dead_letters_total",
        "schakel_publish_to_feed_seconds_bucket",
        "schakel_audit_write_seconds_bucket",
        "schakel_audit_checkpoint_age_seconds",
        "schakel_audit_verification_ok",
        "schakel_consumer_lag",
        "schakel_consumer_last_poll_timestamp_seconds",
    ):
        assert required in used, required
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert datetime.now(UTC)  # the file is static JSON: no generated timestamps to drift
