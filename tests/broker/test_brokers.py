"""Each embedded broker: start, health, loopback only, stop, kill, restart as documented."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from services.broker import (
    BrokerError,
    BrokerKind,
    EmbeddedBroker,
    KafkaSettings,
    KafkaTopicAdmin,
    missing_topics,
    open_kafka,
)
from services.broker.probe import probe
from services.broker.process import LOOPBACK, free_loopback_port
from tests.kafka_fixtures import process_alive as alive
from tests.kafka_fixtures import selected_brokers

pytestmark = pytest.mark.kafka

BrokerFactory = Callable[..., EmbeddedBroker]
KINDS = selected_brokers()


def listening_addresses(pid: int) -> set[str]:
    """``ip:port`` of every TCP socket process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:
                continue
            hex_ip, hex_port = local.split(":")
            ip = (
                socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1])
                if len(hex_ip) == width == 8
                else hex_ip
            )
            found.add(f"{ip}:{int(hex_port, 16)}")
    return found


def produce(settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(**settings.client_kwargs_kafka_python(), linger_ms=5)
    try:
        for value in values:
            producer.send(topic, value, partition=0)
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def read_all(settings: KafkaSettings, topic: str, count: int) -> list[bytes]:
    """The first ``count`` records of partition 0 (fewer if they do not arrive in 20 s)."""
    consumer = KafkaConsumer(**settings.client_kwargs_kafka_python(), enable_auto_commit=False)
    seen: list[bytes] = []
    deadline = time.monotonic() + 20
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        while len(seen) < count and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                seen.extend(record.value for record in records)
    finally:
        consumer.close()
    return seen


@pytest.mark.parametrize("kind", KINDS)
def test_start_health_stop(kind: BrokerKind, broker_factory: BrokerFactory):
    broker = broker_factory(kind)
    assert not broker.is_healthy()
    with broker:
        assert broker.is_healthy()
        assert broker.bootstrap == f"{LOOPBACK}:{broker.port}"
        assert [b.address for b in probe(LOOPBACK, broker.port)] == [broker.bootstrap]
        assert broker.pid is not None
        listening = listening_addresses(broker.pid)
        assert broker.bootstrap in listening
        assert all(address.startswith(f"{LOOPBACK}:") for address in listening), listening
        assert (broker.data_dir / f"{kind}.log").is_file()
        with pytest.raises(BrokerError, match="already running"):
            broker.start()
        pid = broker.pid
    assert not broker.is_healthy()
    assert not alive(pid)


@pytest.mark.parametrize("kind", KINDS)
def test_kill_leaves_no_orphan_and_start_recovers(kind: BrokerKind, broker_factory: BrokerFactory):
    broker = broker_factory(kind)
    broker.start()
    pid = broker.pid
    assert pid is not None
    broker.kill()
    assert not alive(pid)
    assert not broker.is_healthy()
    with socket.socket() as sock:
        assert sock.connect_ex((LOOPBACK, broker.port)) != 0
    broker.start()
    assert broker.is_healthy()
    assert broker.pid != pid
    broker.stop()


def test_tansu_restart_loses_topics(broker_factory: BrokerFactory, unique_topic):
    if "tansu" not in KINDS:
        pytest.skip("tansu not selected")
    broker = broker_factory("tansu")
    broker.start()
    spec = {unique_topic("a"): 2, unique_topic("b"): 1}
    settings = KafkaSettings.local(broker.bootstrap)
    with KafkaTopicAdmin(settings) as admin:
        assert admin.ensure_topics(spec) == sorted(spec)
        assert missing_topics(admin, spec) == []
        port = broker.port
        broker.restart()
        assert broker.port == port
        assert missing_topics(admin, spec) == sorted(spec)
        assert admin.ensure_topics(spec) == sorted(spec)
    broker.stop()


def test_noida_keeps_topics_records_and_offsets_after_clean_stop(
    broker_factory: BrokerFactory, unique_topic
):
    if "noida" not in KINDS:
        pytest.skip("noida not selected")
    broker = broker_factory("noida")
    broker.start()
    topic = unique_topic()
    settings = KafkaSettings.local(broker.bootstrap)
    values = [f"record-{i}".encode() for i in range(25)]
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({topic: 3})
        produce(settings, topic, values)
        consumer = KafkaConsumer(
            topic,
            **settings.client_kwargs_kafka_python(),
            group_id="keeps-offsets",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        seen: list[bytes] = []
        deadline = time.monotonic() + 20
        try:
            while len(seen) < len(values) and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    seen.extend(record.value for record in records)
            consumer.commit()
        finally:
            consumer.close()
        assert seen == values
        broker.restart()
        assert missing_topics(admin, {topic: 3}) == []
        assert admin.partitions(topic) == 3
        assert admin.end_offsets(topic) == {0: 25, 1: 0, 2: 0}
        assert read_all(settings, topic, len(values)) == values
        again = KafkaConsumer(
            **settings.client_kwargs_kafka_python(),
            group_id="keeps-offsets",
            enable_auto_commit=False,
        )
        committed = again.committed(TopicPartition(topic, 0))
        again.close()
        assert committed == 25
    broker.stop()


@pytest.mark.parametrize("kind", KINDS)
def test_port_held_by_another_broker_is_refused(kind: BrokerKind, broker_factory: BrokerFactory):
    """A stale broker on the port must not pass for the new one (it would answer the probe)."""
    first = broker_factory(kind, name="first")
    first.start()
    second = broker_factory(kind, name="second", port=first.port)
    with pytest.raises(BrokerError, match="in use by another program"):
        second.start()
    assert second.pid is None
    assert first.is_healthy()
    first.stop()


def test_child_that_dies_at_start_is_reported_with_its_log(
    broker_factory: BrokerFactory, monkeypatch: pytest.MonkeyPatch
):
    broker = broker_factory(KINDS[0], port=free_loopback_port())
    monkeypatch.setattr(broker, "command", lambda port: ["/bin/sh", "-c", "echo b''oom; exit 3"])
    with pytest.raises(BrokerError, match=r"exited with status 3[\s\S]*boom"):
        broker.start()
    assert not broker.is_healthy()


def test_open_kafka_uses_external_cluster_without_starting_anything(tmp_path: Path):
    env = {"SCHAKEL_KAFKA_BOOTSTRAP": f"{LOOPBACK}:{free_loopback_port()}"}
    with open_kafka(tmp_path, env) as runtime:
        assert runtime.broker is None
        assert runtime.settings.external
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kind", KINDS)
def test_open_kafka_starts_the_embedded_broker(kind: BrokerKind, tmp_path: Path):
    runtime = open_kafka(tmp_path / "kafka", {"SCHAKEL_EMBEDDED_BROKER": kind})
    try:
        assert runtime.broker is not None
        assert runtime.broker.name == kind
        assert runtime.broker.is_healthy()
        assert runtime.settings.bootstrap == runtime.broker.bootstrap
        assert not runtime.settings.external
    finally:
        runtime.close()
    assert not runtime.broker.is_healthy()
