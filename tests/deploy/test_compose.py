"""deploy/compose: the file parses, and every command, variable, topic, user and ACL in it is
one the code really has (no container engine runs here, so this is what can be checked)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services.broker.settings import KafkaSettings
from services.config import ROOT as CODE_ROOT
from services.metrics.http import PATHS
from services.metrics.settings import MetricsSettings
from services.riec.worker import GROUP as RIEC_GROUP
from services.router.app import APP_ID
from services.router.loop import LoopConfig
from services.router.topics import (
    AUDIT,
    AUDIT_INDEXER_GROUP,
    DEAD_LETTER,
    FEED_PREFIX,
    RECEIPT_TIME,
    SIGNALS_PREFIX,
    feed_topic,
    gateway_group,
    recipient_group,
    signals_topic,
    topic_configs,
)
from services.stacking.loop import GROUP as STACKING_GROUP
from tests.deploy.helpers import (
    DEPLOY,
    THIRD_PARTY_ENV,
    env_read_by_code,
    gateway_status,
    resolve,
)
from tests.router.helpers import policy_source

COMPOSE = DEPLOY / "compose"
HUB_IMAGE = "schakel:0.1.0"
ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - inside a container, so Prometheus can scrape it


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def hub_services(compose) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if s.get("image") == HUB_IMAGE}


@pytest.fixture(scope="module")
def policy():
    return policy_source().current.policy


@pytest.fixture(scope="module")
def init() -> dict[str, list[list[str]]]:
    """kafka/init.sh's top-level lines, by their first word (topic, partner, acl, ...)."""
    lines: dict[str, list[list[str]]] = {}
    for line in (COMPOSE / "kafka" / "init.sh").read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", "}")):
            words = line.split()
            lines.setdefault(words[0], []).append(words[1:])
    return lines


def function_body(name: str) -> str:
    text = (COMPOSE / "kafka" / "init.sh").read_text()
    match = re.search(rf"^{name}\(\) {{.*?^}}", text, re.S | re.M)
    assert match, f"init.sh defines {name}()"
    return match.group(0)


def test_the_services_the_issue_asks_for(compose, hub_services):
    services = compose["services"]
    brokers = [n for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")]
    assert {"kafka-1", "kafka-2", "kafka-3", "kafka-init"} == set(brokers)
    for name in ("kafka-1", "kafka-2", "kafka-3"):
        env = services[name]["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
        assert "SASL_PLAINTEXT" in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert {"postgres", "prometheus", "grafana"} <= set(services)
    commands = {n: resolve(s["command"])[0] for n, s in hub_services.items()}
    assert sorted(commands.values()).count("router") == 2
    assert {"stacking", "gateway", "web"} <= set(commands.values())


@pytest.mark.parametrize(
    "name", ["router-1", "router-2", "stacking", "outcomes", "gateway", "web", "riec"]
)
def test_every_hub_command_is_a_real_cli_command_with_real_options(hub_services, name):
    assert resolve(hub_services[name]["command"])  # Typer's own errors say what is wrong


def test_every_variable_set_for_the_hub_is_read_by_the_code(hub_services):
    known = env_read_by_code()
    for name, service in hub_services.items():
        for variable in service["environment"]:
            assert variable in known or variable in THIRD_PARTY_ENV, f"{name}: {variable}"


def test_kafka_settings_of_each_service_are_valid_sasl_scram(hub_services, tmp_path: Path):
    secret = tmp_path / "password"
    secret.write_text("test-only\n")
    for name, service in hub_services.items():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert "SCHAKEL_KAFKA_BOOTSTRAP" in env, name  # the web too: hand-overs, index lag
        user = env["SCHAKEL_KAFKA_SASL_USERNAME"]
        assert env["SCHAKEL_KAFKA_SASL_PASSWORD_FILE"] == f"/run/schakel/kafka/{user}"
        settings = KafkaSettings.from_env(env | {"SCHAKEL_KAFKA_SASL_PASSWORD_FILE": str(secret)})
        assert settings is not None and settings.uses_sasl
        assert settings.sasl_mechanism == "SCRAM-SHA-512"
        assert settings.bootstrap_servers == ("kafka-1:9092", "kafka-2:9092", "kafka-3:9092")


def test_topics_follow_the_covenants_and_the_code_naming(init, policy):
    topics = {name: int(count) for name, count in init["topic"] + init["signal_topic"]}
    expected = {signals_topic(p) for p in policy.suppliers} | {DEAD_LETTER, AUDIT}
    expected |= {feed_topic(r) for r in policy.recipients}
    assert set(topics) == expected
    assert topics[DEAD_LETTER] == 1
    assert topics[AUDIT] == 1  # the one indexer reads it in one order
    assert all(count >= 2 for name, count in topics.items() if name not in (DEAD_LETTER, AUDIT))


def test_every_signals_topic_is_stamped_by_the_broker(init, policy):
    """signals.* are LogAppendTime, as the hub itself declares them (topic_configs): created
    so and altered so when they already exist."""
    stamped = {name for name, _ in init["signal_topic"]}
    assert stamped == set(topic_configs({name for name, _ in init["topic"]} | stamped))
    assert stamped >= {signals_topic(p) for p in policy.suppliers}
    assert all(not name.startswith("signals.") for name, _ in init["topic"])
    body = function_body("signal_topic")
    (setting,) = (f"{k}={v}" for k, v in RECEIPT_TIME.items())
    assert f'topic "$1" "$2" {setting}' in body
    topic = function_body("topic")
    assert '--config "$3"' in topic and '--add-config "$3"' in topic


def test_each_partner_may_write_only_its_own_topic_and_read_only_its_own_feed(init, policy):
    alerts_source = "schakel"  # the hub's own alerts are published by the stacking service
    assert {p for [p] in init["partner"]} == set(policy.suppliers) - {alerts_source}
    assert {r for [r] in init["recipient"]} == set(policy.recipients)
    partner = function_body("partner")
    assert (
        f'acl "$1" --operation Write --operation Describe --topic "{SIGNALS_PREFIX}$1"' in partner
    )
    assert partner.count('acl "$1"') == 1  # nothing else for the partner's own user
    recipient = function_body("recipient")
    assert f'--topic "{FEED_PREFIX}$1"' in recipient
    assert f'acl "$1" --operation Read --group "{recipient_group("$1")}"' in recipient
    assert f'acl schakel-gateway --operation Read --group "{gateway_group("$1")}"' in recipient
    assert recipient.count('acl "$1"') == 2
    assert "--operation Write" not in recipient
    assert "prefixed" not in partner + recipient
    script = (COMPOSE / "kafka" / "init.sh").read_text()
    assert "KAFKA_ALLOW_EVERYONE" not in script


def test_service_users_have_the_groups_and_topics_the_code_uses(init, hub_services):
    acls: dict[str, list[str]] = {}
    for words in init["acl"]:
        acls.setdefault(words[0], []).append(" ".join(words[1:]))
    router = acls["schakel-router"]
    assert f"--operation Read --group {LoopConfig(topics=[]).group_id}" in router
    assert f"--operation Read --group {APP_ID}" in router
    assert f"--operation Write --operation Describe --topic {DEAD_LETTER}" in router
    assert f"--operation Write --operation Describe --topic {AUDIT}" in router
    assert (
        f"--operation Write --operation Describe --transactional-id "
        f"{LoopConfig(topics=[]).group_id}. --resource-pattern-type prefixed" in router
    )
    assert LoopConfig(topics=[], instance_id="router-1").transactional_id.startswith(
        f"{LoopConfig(topics=[]).group_id}."
    )
    indexer = acls["schakel-indexer"]
    assert f"--operation Read --operation Describe --topic {AUDIT}" in indexer
    assert f"--operation Read --group {AUDIT_INDEXER_GROUP}" in indexer
    assert f"--operation Read --group {STACKING_GROUP}" in acls["schakel-stacking"]
    assert (
        f"--operation Write --operation Describe --topic {signals_topic('schakel')}"
        in acls["schakel-stacking"]
    )
    services = {s for [s] in init["service"]}
    users = {s["environment"].get("SCHAKEL_KAFKA_SASL_USERNAME") for s in hub_services.values()}
    assert users - {None} == services


def test_the_riec_reader_and_the_web_have_the_kafka_rights_they_use(init, hub_services, policy):
    """The RIEC feed reader reads each RIEC's feed in its own group; the web publishes the
    RIEC's hand-overs and reads the audit indexer's lag — nothing more."""
    acls: dict[str, list[str]] = {}
    for words in init["acl"]:
        acls.setdefault(words[0], []).append(" ".join(words[1:]))
    riecs = sorted(
        {
            party_id
            for covenant in policy.covenants
            for party_id, party in covenant.parties.items()
            if party.kind == "riec"
        }
    )
    assert riecs == ["riec-nh"]
    assert sorted(acls["schakel-riec"]) == sorted(
        [*(f"--operation Read --operation Describe --topic {feed_topic(r)}" for r in riecs),
         f"--operation Read --group {RIEC_GROUP}"]
    )  # fmt: skip
    assert sorted(acls["schakel-web"]) == sorted(
        [*(f"--operation Write --operation Describe --topic {signals_topic(r)}" for r in riecs),
         f"--operation Describe --topic {AUDIT}",
         f"--operation Describe --group {AUDIT_INDEXER_GROUP}"]
    )  # fmt: skip
    assert resolve(hub_services["riec"]["command"]) == ["riec", "run"]
    web = hub_services["web"]
    assert web["environment"]["SCHAKEL_KAFKA_SASL_USERNAME"] == "schakel-web"
    key = web["environment"]["SCHAKEL_RIEC_KEY_FILE"]
    for name, service in hub_services.items():  # the RIEC's signing key: the web's alone
        mounted = _mounts(service, key)
        assert mounted == (["ro"] if name == "web" else []), name
        assert ("SCHAKEL_RIEC_KEY_FILE" in service["environment"]) == (name == "web"), name
    secrets_sh = (COMPOSE / "secrets.sh").read_text()
    assert "schakel keys partner riec-nh" in secrets_sh and "/out/riec-key.json" in secrets_sh
    assert "riec-key.json" in web["volumes"][1] and "./secrets/" in web["volumes"][1]


def test_metrics_ports_prometheus_targets_and_healthchecks_match_the_code(compose, hub_services):
    prometheus = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    routers = [
        n
        for n, s in hub_services.items()
        if s["command"][0] in ("router", "stacking", "gateway", "indexer")
    ]
    assert {"stacking", "gateway", "indexer"} <= set(routers)  # a metrics listener of their own
    for name in routers:
        env = {k: str(v) for k, v in hub_services[name]["environment"].items()}
        settings = MetricsSettings.from_env(env)
        assert settings.host == ANY_ADDRESS and settings.port is not None
        assert f"{name}:{settings.port}" in targets
        check = " ".join(hub_services[name]["healthcheck"]["test"])
        path = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", check)
        if name == "gateway":  # its probes are routes of the app, on the partners' port
            command = hub_services[name]["command"]
            port = command[command.index("--port") + 1]
            assert path and path.group(1) == port and path.group(2) in PATHS, name
            assert f"{name}:{port}" not in targets  # no scraping where partners connect
            continue
        assert path and int(path.group(1)) == settings.port and path.group(2) in PATHS
    command = hub_services["web"]["command"]  # FastAPI: the probes are routes of the app
    port = command[command.index("--port") + 1]
    assert f"web:{port}" in targets
    check = " ".join(hub_services["web"]["healthcheck"]["test"])
    path = re.search(r"127\.0\.0\.1:(\d+)(/\w+)", check)
    assert path and path.group(1) == port and path.group(2) in PATHS
    assert gateway_status(list(PATHS)) == {"/metrics": 404, "/healthz": 200, "/readyz": 200}
    assert prometheus["rule_files"] == ["/etc/prometheus/alerts.yaml"]
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "../prometheus/alerts.yaml:/etc/prometheus/alerts.yaml:ro" in mounts
    for mount in mounts + compose["services"]["grafana"]["volumes"]:
        source = mount.split(":")[0]
        if source.startswith("."):
            assert (COMPOSE / source).exists(), mount


def test_secrets_stay_out_of_the_repository():
    text = (COMPOSE / "compose.yaml").read_text()
    assert "PASSWORD:" not in text.replace("PGPASSWORD: ${POSTGRES_PASSWORD:?", "")
    assert (COMPOSE / ".gitignore").read_text().split() == ["secrets/", ".env"]


def test_the_image_runs_the_cli_with_the_repositorys_covenants():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["schakel"]' in dockerfile
    assert "USER 10001" in dockerfile
    env = dict(re.findall(r"(SCHAKEL_[A-Z_]+)=(\S+)", dockerfile))
    assert set(env) <= env_read_by_code()
    assert env["SCHAKEL_COVENANTS"] == "/app/covenants"
    assert env["SCHAKEL_SCHEMAS"] == "/app/schemas/signals"
    assert (CODE_ROOT / "schemas" / "signals").is_dir()
    for copied in re.findall(r"^COPY (\S+) ", dockerfile, re.M):
        assert (CODE_ROOT / copied).exists(), copied


def test_the_image_and_the_deployment_never_load_the_demo_test_keys():
    """covenants/demo/ (TEST key registrations) stays out of the image; no deployment file
    switches demo mode on."""
    ignored = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert "covenants/demo" in ignored
    assert (CODE_ROOT / "covenants" / "demo" / "keys.yaml").exists()
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.suffix in ("", ".yaml", ".yml", ".env", ".json"):
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not re.search(r"SCHAKEL_DEMO\s*[:=]\s*[\"']?(1|true|yes)", text, re.I), path
            assert "--demo" not in text, path


# Who may mount what (docs/operations: the audit writers sign checkpoints and append them to
# the witness; the web only reads it to verify; the gateway needs neither the pseudonym keys
# nor the witness — it checks signatures with the partners' public keys of the covenants).
AUDIT_WRITERS = {"router-1", "router-2", "indexer", "stacking", "outcomes", "riec"}
KEY_FILE_READERS = AUDIT_WRITERS | {"web"}


def _mounts(service: dict, target: str) -> list[str]:
    """The modes (``rw`` or ``ro``) of every volume of ``service`` mounted at ``target``."""
    modes = []
    for volume in service.get("volumes", []):
        parts = str(volume).split(":")
        if parts[1] == target:
            modes.append(parts[2] if len(parts) > 2 else "rw")
    return modes


def test_only_the_audit_writers_mount_the_witness_read_write_and_the_signing_key(hub_services):
    assert set(hub_services) >= KEY_FILE_READERS | {"gateway", "maintenance"}
    for name, service in hub_services.items():
        witness = _mounts(service, "/var/lib/schakel-witness")
        signing = _mounts(service, "/run/schakel/keys.signing.json")
        if name in AUDIT_WRITERS:
            assert witness == ["rw"], name
            assert signing == ["ro"], name
        elif name == "web":
            assert witness == ["ro"], "the web only reads the witness, to verify"
            assert signing == [], name
        else:
            assert witness == [] and signing == [], f"{name} writes no audit checkpoint"


def test_every_service_can_read_its_own_kafka_password_and_no_other(hub_services):
    """No hub service mounts the directory of every service user's password (a foothold in
    one must not yield another's Kafka rights): each gets exactly its own file, read-only."""
    assert {"web", "gateway", "maintenance", "riec", "router-1"} <= set(hub_services)
    for name, service in hub_services.items():
        user = service["environment"]["SCHAKEL_KAFKA_SASL_USERNAME"]
        kafka = [str(v) for v in service.get("volumes", []) if "kafka" in str(v).split(":")[0]]
        assert kafka == [f"./secrets/kafka/{user}:/run/schakel/kafka/{user}:ro"], name
        assert service["environment"]["SCHAKEL_KAFKA_SASL_PASSWORD_FILE"] == (
            f"/run/schakel/kafka/{user}"
        ), name


def test_only_the_services_that_pseudonymise_get_the_key_file(hub_services):
    for name, service in hub_services.items():
        keys = _mounts(service, "/run/schakel/keys.json")
        assert keys == (["ro"] if name in KEY_FILE_READERS else []), name
        password = service["environment"].get("SCHAKEL_KAFKA_SASL_PASSWORD_FILE")
        if password:
            mounts = _mounts(service, "/run/schakel/kafka") + _mounts(service, password)
            assert mounts == ["ro"], f"{name}: its password"
