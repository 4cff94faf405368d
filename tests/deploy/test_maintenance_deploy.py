"""The maintenance service in deploy/: one instance in compose and on Kubernetes, recreating
topics with the partition counts kafka/init.sh made them with, probed and scraped on the port
the code serves, and with exactly the Kafka access the code needs."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from services.metrics.http import PATHS
from services.metrics.settings import MetricsSettings
from services.router.topics import DEAD_LETTER, FEED_PREFIX, SIGNALS_PREFIX, recipient_group
from tests.deploy.helpers import DEPLOY, load_yaml_documents, resolve

COMPOSE = DEPLOY / "compose"
INIT = COMPOSE / "kafka" / "init.sh"
USER = "schakel-maintenance"


@pytest.fixture(scope="module")
def compose_service() -> dict[str, Any]:
    services = yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]
    return dict(services["maintenance"])


@pytest.fixture(scope="module")
def deployment() -> dict[str, Any]:
    [doc] = load_yaml_documents(DEPLOY / "k8s" / "base" / "maintenance.yaml")
    return dict(doc)


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def init_partitions() -> tuple[set[int], set[int]]:
    """The partition counts init.sh gives signals topics and feed topics."""
    topics = re.findall(r"^(?:signal_)?topic (\S+) (\d+)$", INIT.read_text(), re.M)
    signals = {int(n) for t, n in topics if t.startswith(SIGNALS_PREFIX) and t != DEAD_LETTER}
    feeds = {int(n) for t, n in topics if t.startswith(FEED_PREFIX)}
    return signals, feeds


def check_args(args: list[str]) -> None:
    assert resolve(args) == ["maintenance"]
    signals, feeds = init_partitions()
    assert {int(option(args, "--signal-partitions"))} == signals  # recreated as first made
    assert {int(option(args, "--feed-partitions"))} == feeds


def test_compose_runs_one_maintenance_service_scraped_and_probed(
    compose_service: dict[str, Any],
) -> None:
    check_args(compose_service["command"])
    assert "deploy" not in compose_service and "scale" not in compose_service  # one instance
    env = {k: str(v) for k, v in compose_service["environment"].items()}
    assert env["SCHAKEL_KAFKA_SASL_USERNAME"] == USER
    assert env["SCHAKEL_KAFKA_SASL_PASSWORD_FILE"] == f"/run/schakel/kafka/{USER}"
    assert "SCHAKEL_KEYS" not in env
    assert not any("keys.json" in mount for mount in compose_service["volumes"])
    settings = MetricsSettings.from_env(env)
    assert settings.port is not None
    check = " ".join(compose_service["healthcheck"]["test"])
    probed = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", check)
    assert probed and int(probed.group(1)) == settings.port and probed.group(2) in PATHS
    prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    targets = jobs["schakel-maintenance"]["static_configs"][0]["targets"]
    assert targets == [f"maintenance:{settings.port}"]


def test_the_maintenance_user_may_do_what_the_code_does_and_nothing_more() -> None:
    acls = [
        line.split()[2:]
        for line in INIT.read_text().splitlines()
        if line.startswith(f"acl {USER} ")
    ]
    granted = {
        (" ".join(words[words.index("--topic") if "--topic" in words else words.index("--group") :]))
        : {words[i + 1] for i, w in enumerate(words) if w == "--operation"}
        for words in acls
    }  # fmt: skip
    prefixed = "--resource-pattern-type prefixed"
    # notice lost topics (Describe), recreate them (Create); re-deliver feed messages (Write);
    # check and set LogAppendTime on the signals topics (RECEIPT_TIME, ensure_topics)
    assert granted[f"--topic {SIGNALS_PREFIX} {prefixed}"] == {
        "Describe",
        "Create",
        "DescribeConfigs",
        "AlterConfigs",
    }
    assert granted[f"--topic {FEED_PREFIX} {prefixed}"] == {"Describe", "Create", "Write"}
    # read the recipients' committed offsets (OffsetFetch: Describe), never join their groups
    assert granted[f"--group {recipient_group('')} {prefixed}"] == {"Describe"}
    assert len(granted) == 3
    assert re.search(rf"^service {USER}$", INIT.read_text(), re.M)


def test_kubernetes_runs_exactly_one_with_probes_on_the_metrics_server(
    deployment: dict[str, Any],
) -> None:
    spec = deployment["spec"]
    assert deployment["kind"] == "Deployment" and spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}  # never two during a roll-out
    [container] = spec["template"]["spec"]["containers"]
    check_args(container["args"])
    env = {e["name"]: e for e in container["env"]}
    assert env["SCHAKEL_KAFKA_SASL_USERNAME"]["value"] == USER
    secret = env["SCHAKEL_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "schakel-kafka", "key": USER}
    port = int(env["SCHAKEL_METRICS_PORT"]["value"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    assert "/run/schakel/keys" not in mounts  # no key file: it pseudonymises nothing
