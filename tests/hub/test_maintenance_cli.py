"""``schakel maintenance``: the tick loop, its metrics and logs, and the real command against a
Tansu broker that loses everything on restart (run as a subprocess, stopped with SIGTERM)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, generate_latest

from services.audit.model import OutboxEntry
from services.audit.store import SqlAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.process import free_loopback_port
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.config import Paths, check_covenants
from services.core.errors import SchakelError
from services.database.engine import make_engine
from services.hub.maintenance import Maintenance, MaintenanceReport
from services.hub.maintenance_metrics import MaintenanceMetrics, unconsumed_counts
from services.hub.maintenance_service import ServiceOptions, parties, run_ticks
from services.router.topics import TopicLayout, feed_topic, recipient_group, topic_configs
from tests.kafka_fixtures import selected_brokers

CANARY = "871687120000000019"  # an EAN-shaped value inside the feed messages: never logged
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def entry(recipient: str, n: int) -> OutboxEntry:
    value = orjson.dumps({"exchange_id": f"x-{recipient}-{n}", "ean": CANARY})
    return OutboxEntry(f"x-{recipient}-{n}", recipient, f"k{n}".encode(), value, NOW)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


# --- the loop, with a double for the tick -------------------------------------------------


class Ticks:
    """Hands out reports (or raises) in order; stops the loop after the last one."""

    def __init__(self, outcomes: list[MaintenanceReport | Exception], stop: threading.Event):
        self.outcomes = outcomes
        self.stop = stop
        self.calls = 0

    def tick(self) -> MaintenanceReport:
        outcome = self.outcomes[self.calls]
        self.calls += 1
        if self.calls == len(self.outcomes):
            self.stop.set()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_ticks_count_redeliveries_per_topic_set_the_backlog_and_survive_failures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()
    lost = MaintenanceReport(
        ["feed.politie-nh", "feed.riec-nh"], 5, 0, {"feed.riec-nh": 3, "feed.politie-nh": 2}
    )
    ticks = Ticks(
        [
            MaintenanceReport([], 0, 4),
            SchakelError("cannot reach Kafka at 127.0.0.1:1"),
            RuntimeError(f"a value {CANARY} in the message"),
            lost,
        ],
        stop,
    )
    registry = CollectorRegistry()
    metrics = MaintenanceMetrics(registry, ["politie-nh", "riec-nh"])
    backlogs = iter([{"riec-nh": 7}, {"riec-nh": 5, f"x{CANARY}": 1}])
    with caplog.at_level(logging.INFO, logger="schakel.maintenance"):
        ok = run_ticks(ticks, lambda: next(backlogs), metrics, stop, ServiceOptions(0.01))
    assert ok and ticks.calls == 4
    assert sample(registry, "schakel_maintenance_ticks_total", result="ok") == 2
    assert sample(registry, "schakel_maintenance_ticks_total", result="failed") == 2
    assert sample(registry, "schakel_maintenance_consumed_total") == 4
    assert sample(registry, "schakel_maintenance_topics_recreated_total") == 2
    assert sample(registry, "schakel_maintenance_redelivered_total", topic="feed.riec-nh") == 3
    assert sample(registry, "schakel_maintenance_redelivered_total", topic="feed.politie-nh") == 2
    assert sample(registry, "schakel_outbox_unconsumed", recipient="riec-nh") == 5
    assert sample(registry, "schakel_outbox_unconsumed", recipient="politie-nh") == 0
    assert sample(registry, "schakel_outbox_unconsumed", recipient="other") == 1
    exposition = generate_latest(registry).decode()
    assert CANARY not in exposition
    text = caplog.text
    assert "re-delivered 5 feed message(s): feed.politie-nh=2, feed.riec-nh=3" in text
    assert "recreated: feed.politie-nh, feed.riec-nh" in text
    assert "cannot reach Kafka" in text and "RuntimeError" in text
    assert CANARY not in text


def test_once_reports_failure_and_probes_follow_the_ticks() -> None:
    now = [100.0]
    stop = threading.Event()
    registry = CollectorRegistry()
    metrics = MaintenanceMetrics(registry, ["riec-nh"], monotonic=lambda: now[0])
    health = metrics.health(interval_s=5.0)
    assert health.live().ok and not health.ready().ok  # starting: alive, no tick yet
    failing = Ticks([SchakelError("broker down")], threading.Event())
    assert not run_ticks(failing, dict, metrics, stop, ServiceOptions(5.0, once=True))
    assert not stop.is_set() and not health.ready().ok
    assert run_ticks(Ticks([MaintenanceReport([], 0, 0)], threading.Event()), dict, metrics,
                     stop, ServiceOptions(5.0, once=True))  # fmt: skip
    assert health.ready().ok and health.live().ok
    now[0] += 61  # no successful tick for a minute: not ready, still alive
    assert not health.ready().ok and health.live().ok
    now[0] += 600  # no tick started or ended for ten minutes: stuck
    assert not health.live().ok


class LostOnce:
    """A topic admin double whose broker lost its feed topic before the first listing."""

    def __init__(self) -> None:
        self.topics: list[str] = []

    def __enter__(self) -> LostOnce:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def list_topics(self) -> list[str]:
        return list(self.topics)

    def ensure_topics(
        self, spec: dict[str, int], configs: Mapping[str, Mapping[str, str]] | None = None
    ) -> list[str]:
        assert configs == topic_configs(spec)  # recreated signals topics are LogAppendTime
        created = [t for t in spec if t not in self.topics]
        self.topics.extend(created)
        return created


def test_a_failed_redelivery_is_retried_at_the_next_tick_and_on_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import services.hub.maintenance as module

    admin = LostOnce()
    monkeypatch.setattr(module, "KafkaTopicAdmin", lambda _settings: admin)
    outcomes: list[int | Exception] = [SchakelError("broker went away"), 3, 2]
    calls: list[str] = []

    def redeliver(self: Maintenance, limit: int = 0) -> int:
        calls.append("redeliver")
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(Maintenance, "redeliver", redeliver)
    monkeypatch.setattr(Maintenance, "record_consumption", lambda self: 0)
    settings = KafkaSettings.local("127.0.0.1:1")
    maintenance = Maintenance(settings, None, {"feed.riec-nh": 1}, ["riec-nh"])  # type: ignore[arg-type]
    with pytest.raises(SchakelError):
        maintenance.tick()  # lost, recreated, re-delivery failed
    report = maintenance.tick()  # the topic exists now, but the re-delivery is still owed
    assert report.recreated == [] and report.redelivered == 3
    assert maintenance.tick().redelivered == 0 and calls == ["redeliver"] * 2  # done: not again
    maintenance.request_redelivery()
    assert maintenance.tick().redelivered == 2


def test_unconsumed_counts_come_from_the_outbox(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    store = SqlAuditStore(engine)
    store.create_schema()
    store.record([], [entry("riec-nh", n) for n in range(3)] + [entry("politie-nh", 0)])
    store.mark_produced([(f"x-riec-nh-{n}", 0, n) for n in range(3)])
    assert store.mark_consumed("riec-nh", 0, 2) == 2
    assert unconsumed_counts(engine) == {"riec-nh": 1, "politie-nh": 1}
    store.close()
    engine.dispose()


def test_parties_are_the_policys_suppliers_and_recipients() -> None:
    from tests.router.helpers import policy_source

    paths = Paths.from_env({})
    _, _, checked = check_covenants(
        list(paths.covenants), paths.schemas, paths.reference, today=NOW.date(), demo=True
    )
    policy = policy_source().current.policy
    assert parties(checked) == (set(policy.suppliers), set(policy.recipients))


# --- the real command against a broker that loses its data -------------------------------


def wait_for(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n{log.read_text()}")


def scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as answer:
            return str(answer.read().decode())
    except (urllib.error.URLError, OSError):
        return ""


def metric(text: str, name: str, **labels: str) -> float | None:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # as exposed
    pattern = re.escape(f"{name}{{{wanted}}}" if wanted else name) + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, re.M)
    return float(found.group(1)) if found else None


def read_exchange_ids(settings: KafkaSettings, topic: str, partitions: int) -> set[str]:
    consumer = KafkaConsumer(**settings.client_kwargs_kafka_python(), enable_auto_commit=False)
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning()
        seen: set[str] = set()
        deadline = time.monotonic() + 10
        with KafkaTopicAdmin(settings) as admin:  # corrects Tansu's end offsets
            ends = {TopicPartition(topic, p): end for p, end in admin.end_offsets(topic).items()}
        while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in parts):
            for records in consumer.poll(timeout_ms=200).values():
                seen.update(orjson.loads(r.value)["exchange_id"] for r in records)
        return seen
    finally:
        consumer.close()


def commit_everything(settings: KafkaSettings, recipient: str, partitions: int) -> None:
    """Act as the recipient: commit its group's offsets at the end of its feed."""
    consumer = KafkaConsumer(
        **settings.client_kwargs_kafka_python(),
        group_id=recipient_group(recipient),
        enable_auto_commit=False,
    )
    try:
        with KafkaTopicAdmin(settings) as admin:  # corrects Tansu's end offsets
            ends = admin.end_offsets(feed_topic(recipient))
        assert len(ends) == partitions
        consumer.commit(
            {
                TopicPartition(feed_topic(recipient), p): OffsetAndMetadata(end, "", -1)
                for p, end in ends.items()
            }
        )
    finally:
        consumer.close()


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.skipif("tansu" not in selected_brokers(), reason="only Tansu loses data on restart")
def test_the_command_redelivers_what_a_restarted_broker_lost_and_stops_on_sigterm(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    broker = broker_factory("tansu")
    broker.start()
    settings = KafkaSettings.local(broker.bootstrap)
    paths = Paths.from_env({})
    _, _, checked = check_covenants(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        today=datetime.now(UTC).date(),
        demo=True,
    )
    suppliers, recipients = parties(checked)
    layout = TopicLayout(signal_partitions=2, feed_partitions=2)
    spec = layout.spec(suppliers, recipients)
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics(spec)
    db = tmp_path / "audit.db"
    store = SqlAuditStore(make_engine(f"sqlite:///{db}"))
    store.create_schema()
    store.record(
        [], [entry("riec-nh", n) for n in range(6)] + [entry("politie-nh", n) for n in range(4)]
    )
    assert Maintenance(settings, store, spec, recipients).redeliver() == 10  # first delivery
    commit_everything(settings, "riec-nh", 2)  # the RIEC read its feed; the police did not
    store.close()

    port = free_loopback_port()
    env = {
        **os.environ,
        "SCHAKEL_KAFKA_BOOTSTRAP": settings.bootstrap,
        "SCHAKEL_DATABASE_URL": f"sqlite:///{db}",
        "SCHAKEL_METRICS_PORT": str(port),
        "SCHAKEL_STATE_DIR": str(tmp_path / "state"),
    }
    log = tmp_path / "maintenance.log"
    with log.open("wb") as out:
        service = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "maintenance", "--interval", "0.5",
             "--signal-partitions", "2", "--feed-partitions", "2"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            # consumption recorded: only the police's 4 messages are left in the outbox
            wait_for(
                lambda: (
                    metric(scrape(port), "schakel_outbox_unconsumed", recipient="riec-nh") == 0
                    and metric(scrape(port), "schakel_outbox_unconsumed", recipient="politie-nh")
                    == 4
                ),
                60,
                "consumption recorded",
                log,
            )
            broker.restart()  # Tansu: topics, messages and committed offsets are gone
            wait_for(
                lambda: (
                    metric(
                        scrape(port),
                        "schakel_maintenance_redelivered_total",
                        topic="feed.politie-nh",
                    )
                    == 4
                ),
                60,
                "re-delivery",
                log,
            )
            assert read_exchange_ids(settings, "feed.politie-nh", 2) == {
                f"x-politie-nh-{n}" for n in range(4)
            }
            assert read_exchange_ids(settings, "feed.riec-nh", 2) == set()  # consumed: not again
            text = scrape(port)
            assert metric(text, "schakel_maintenance_topics_recreated_total") == len(spec)
            assert metric(text, "schakel_check_ok", probe="ready", check="tick") == 1
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as ready:
                assert ready.status == 200
        finally:
            service.send_signal(signal.SIGTERM)
            code = service.wait(60)
    output = log.read_text()
    assert code == 0, output
    assert "SIGTERM: stopping after the current tick" in output
    assert "maintenance stopped" in output
    assert "re-delivered 4 feed message(s): feed.politie-nh=4" in output
    assert CANARY not in output and "x-politie-nh" not in output
    # by hand, e.g. after a re-delivery was cut short: once, whether topics were lost or not
    again = subprocess.run(
        [sys.executable, "-m", "services.cli", "maintenance", "--once", "--redeliver",
         "--signal-partitions", "2", "--feed-partitions", "2"],
        env={**env, "SCHAKEL_METRICS_PORT": ""}, capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr.decode()
    assert "re-delivered 4 feed message(s): feed.politie-nh=4" in again.stderr.decode()
    assert read_exchange_ids(settings, "feed.politie-nh", 2) == {
        f"x-politie-nh-{n}" for n in range(4)
    }  # duplicates carry the same exchange id


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_what_a_recipient_read_through_the_gateway_counts_as_consumed(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    """The gateway commits HTTP reads in the recipient's gateway group; maintenance counts
    them consumed as it does the recipient's own group."""
    import asyncio
    import uuid

    from services.gateway.kafka import KafkaFeedSource
    from services.router.topics import gateway_group

    recipient = f"r{uuid.uuid4().hex[:8]}"
    spec = {feed_topic(recipient): 1}
    with KafkaTopicAdmin(kafka_settings) as admin:
        admin.ensure_topics(spec)
    store = SqlAuditStore(make_engine(f"sqlite:///{tmp_path / 'audit.db'}"))
    store.create_schema()
    try:
        store.record([], [entry(recipient, n) for n in range(5)])
        maintenance = Maintenance(kafka_settings, store, spec, [recipient])
        assert maintenance.redeliver() == 5  # produced at offsets 0-4
        feed = KafkaFeedSource(kafka_settings)
        asyncio.run(feed.acknowledge(feed_topic(recipient), gateway_group(recipient), {0: 3}))
        assert maintenance.record_consumption() == 3
        assert [e.exchange_id for e in store.undelivered(recipient)] == [
            f"x-{recipient}-{n}" for n in (3, 4)
        ]
    finally:
        store.close()
