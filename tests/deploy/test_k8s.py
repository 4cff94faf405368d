"""deploy/k8s: the kustomize base and overlay parse, and commands, variables, probes, resource
requests and secrets agree with the code."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from services.metrics.http import PATHS
from services.metrics.settings import MetricsSettings
from tests.deploy.helpers import (
    DEPLOY,
    THIRD_PARTY_ENV,
    env_read_by_code,
    gateway_status,
    load_yaml_documents,
    resolve,
    walk,
    web_status,
)

BASE = DEPLOY / "k8s" / "base"
OVERLAY = DEPLOY / "k8s" / "overlays" / "production"
_K8S_VAR = re.compile(r"\$\((\w+)\)")


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


@pytest.fixture(scope="module")
def workloads(base) -> list[dict[str, Any]]:
    docs = [doc for name in base["resources"] for doc in load_yaml_documents(BASE / name)]
    return [doc for doc in docs if doc["kind"] in ("Deployment", "StatefulSet")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def test_kustomizations_name_files_that_exist(base):
    for name in base["resources"]:
        assert (BASE / name).is_file(), name
        for doc in load_yaml_documents(BASE / name):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), name
    overlay = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert overlay["resources"] == ["../../base"]
    assert (OVERLAY / ".gitignore").read_text().split() == ["secrets/"]


def test_the_hub_services_are_all_there(workloads):
    commands = {w["metadata"]["name"]: resolve(containers(w)[0]["args"]) for w in workloads}
    assert commands == {
        "router": ["router"],
        "web": ["web"],
        "gateway": ["gateway"],
        "stacking": ["stacking", "run"],
        "outcomes": ["outcomes", "run"],
        "maintenance": ["maintenance"],
        "indexer": ["indexer"],
        "riec": ["riec", "run"],
    }
    router = next(w for w in workloads if w["metadata"]["name"] == "router")
    assert router["kind"] == "StatefulSet"  # stable pod names: static group membership
    assert router["spec"]["replicas"] >= 2


def test_variables_are_read_by_the_code_or_filled_into_arguments(base, workloads):
    known = env_read_by_code()
    literals = dict(
        item.split("=", 1) for gen in base["configMapGenerator"] for item in gen["literals"]
    )
    assert set(literals) <= known
    for workload in workloads:
        for container in containers(workload):
            used = {m for arg in container.get("args", []) for m in _K8S_VAR.findall(arg)}
            for item in container.get("env", []):
                used |= set(_K8S_VAR.findall(str(item.get("value", ""))))
            for item in container.get("env", []):
                name = item["name"]
                assert name in known or name in THIRD_PARTY_ENV or name in used, name


def test_every_container_has_resource_requests_and_limits(workloads):
    for workload in workloads:
        for container in containers(workload):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), workload["metadata"]["name"]
            assert {"cpu", "memory"} <= set(resources["limits"])


def test_http_probes_point_at_routes_the_services_serve(workloads):
    probed = set()
    for workload in workloads:
        name = workload["metadata"]["name"]
        for container in containers(workload):
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            for kind in ("livenessProbe", "readinessProbe"):
                probe = container.get(kind, {}).get("httpGet")
                if probe is None:
                    continue
                assert probe["port"] in ports
                if name in ("router", "maintenance", "stacking", "indexer"):  # MetricsServer
                    assert probe["path"] in PATHS, probe["path"]
                    assert probe["port"] == "metrics"
                elif name == "gateway":
                    assert gateway_status([probe["path"]]) == {probe["path"]: 200}
                else:
                    assert name == "web", f"{name}: which server answers {probe['path']}?"
                    assert web_status([probe["path"]]) == {probe["path"]: 200}
                probed.add((name, probe["path"]))
    assert {("router", "/healthz"), ("router", "/readyz")} <= probed
    assert {("web", "/healthz"), ("web", "/readyz")} <= probed
    assert {("gateway", "/healthz"), ("gateway", "/readyz")} <= probed
    assert {("stacking", "/healthz"), ("stacking", "/readyz")} <= probed
    assert {("indexer", "/healthz"), ("indexer", "/readyz")} <= probed
    for name in ("router", "stacking", "gateway", "indexer"):
        workload = next(w for w in workloads if w["metadata"]["name"] == name)
        [container] = containers(workload)
        env = {e["name"]: e.get("value") for e in container["env"]}
        settings = MetricsSettings.from_env({k: v for k, v in env.items() if v is not None})
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert settings.port == ports["metrics"] and settings.host == "0.0.0.0", name  # noqa: S104 - a container
        annotations = workload["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(settings.port)
    router = next(w for w in workloads if w["metadata"]["name"] == "router")
    env = {e["name"]: e.get("value") for e in containers(router)[0]["env"]}
    assert int(env["SCHAKEL_METRICS_PORT"]) == containers(router)[0]["ports"][0]["containerPort"]


def test_secrets_come_from_the_overlays_generator_and_keys_are_copied_private(workloads):
    overlay = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    generated = {gen["name"] for gen in overlay["secretGenerator"]}
    referenced = set()
    for workload in workloads:
        for node in walk(workload):
            if isinstance(node, dict):
                if "secretKeyRef" in node:
                    referenced.add(node["secretKeyRef"]["name"])
                if "secretName" in node:
                    referenced.add(node["secretName"])
        spec = workload["spec"]["template"]["spec"]
        mounts = {m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])}
        if "/run/schakel/keys" in mounts:  # the key store must be 0600, a secret volume is not
            init = " ".join(spec["initContainers"][0]["command"])
            assert "install -m 0600" in init
    assert referenced == generated
    kafka_users = {
        node["secretKeyRef"]["key"]
        for workload in workloads
        for node in walk(workload)
        if isinstance(node, dict)
        and "secretKeyRef" in node
        and node["secretKeyRef"]["name"] == "schakel-kafka"
    }
    init_sh = (DEPLOY / "compose" / "kafka" / "init.sh").read_text()
    assert kafka_users == set(re.findall(r"^service (\S+)$", init_sh, re.M))


AUDIT_WRITERS = {"router", "indexer", "stacking", "outcomes", "riec"}
"""Write audit records and sign checkpoints: the signing key and the witness read-write."""
KEY_FILE_READERS = AUDIT_WRITERS | {"web"}


def _mount(workload: dict[str, Any], volume: str) -> list[bool]:
    """``readOnly`` of each mount of ``volume`` in the workload's containers."""
    spec = workload["spec"]["template"]["spec"]
    return [
        bool(m.get("readOnly", False))
        for c in spec["containers"]
        for m in c.get("volumeMounts", [])
        if m["name"] == volume
    ]


def _secrets(workload: dict[str, Any]) -> set[str]:
    spec = workload["spec"]["template"]["spec"]
    return {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}


def test_only_the_audit_writers_mount_the_witness_read_write_and_the_signing_key(workloads):
    named = {w["metadata"]["name"]: w for w in workloads}
    assert set(named) >= KEY_FILE_READERS | {"gateway", "maintenance"}
    for name, workload in named.items():
        witness = _mount(workload, "witness")
        signing = "schakel-signing-key" in _secrets(workload)
        if name in AUDIT_WRITERS:
            assert witness == [False] and signing, name
            init = " ".join(workload["spec"]["template"]["spec"]["initContainers"][0]["command"])
            assert "/run/schakel/keys/keys.signing.json" in init, name
        elif name == "web":
            assert witness == [True] and not signing, "the web only reads the witness"
        else:
            assert witness == [] and not signing, f"{name} writes no audit checkpoint"
        assert ("schakel-keys" in _secrets(workload)) == (name in KEY_FILE_READERS), name
        # the RIEC's signing key (hand-overs): the web's alone
        assert ("schakel-riec-key" in _secrets(workload)) == (name == "web"), name


def test_the_web_has_kafka_for_hand_overs_and_the_index_lag(workloads):
    named = {w["metadata"]["name"]: w for w in workloads}
    for name in ("web", "riec"):
        [container] = containers(named[name])
        env = {e["name"]: e for e in container["env"]}
        user = env["SCHAKEL_KAFKA_SASL_USERNAME"]["value"]
        assert user == f"schakel-{name}"
        password = env["SCHAKEL_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert password == {"name": "schakel-kafka", "key": user}
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["kafka-ca"]["readOnly"] is True
    [web] = containers(named["web"])
    env = {e["name"]: e.get("value") for e in web["env"]}
    init = " ".join(named["web"]["spec"]["template"]["spec"]["initContainers"][0]["command"])
    assert (
        f"install -m 0600 /run/schakel/riec-key-secret/riec-key.json {env['SCHAKEL_RIEC_KEY_FILE']}"
        in init
    )
