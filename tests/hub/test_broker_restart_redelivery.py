"""A persistent broker killed and restarted: re-deliver what it lost, not the whole unconsumed
backlog (issue 15, F4: a SIGKILL of noida re-delivered 5,134 messages although noida had kept
them all, and feed.riec-nh went from 3,758 to 7,492).

The hub restarts the broker and asks for a verified re-delivery; every unconsumed outbox
entry is looked up at its recorded partition and offset. Entries tampered with here (recorded
at an offset past the end, or at another message's offset) stand for messages the broker
lost, so the test knows exactly what must come back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from services.audit.model import OutboxEntry
from services.audit.store import SqlAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.quiet_logs import BrokerOutage
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.database.engine import make_engine
from services.hub.maintenance import Maintenance
from services.router.topics import feed_topic

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

RECIPIENT = "riec-nh"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def entry(n: int) -> OutboxEntry:
    value = orjson.dumps({"exchange_id": f"x-{n}", "n": n})
    return OutboxEntry(f"x-{n}", RECIPIENT, f"k{n}".encode(), value, NOW)


def feed_values(settings: KafkaSettings) -> list[bytes]:
    topic = feed_topic(RECIPIENT)
    with KafkaTopicAdmin(settings) as admin:
        ends = admin.end_offsets(topic)
    consumer = KafkaConsumer(
        **settings.client_kwargs_kafka_python(), enable_auto_commit=False, group_id=None
    )
    try:
        parts = [TopicPartition(topic, p) for p in ends]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        seen: list[bytes] = []
        for _ in range(120):
            if all(consumer.position(tp) >= ends[tp.partition] for tp in parts):
                break
            for batch in consumer.poll(timeout_ms=500).values():
                seen += [m.value for m in batch if m.value is not None]
        return seen
    finally:
        consumer.close()


def test_a_killed_persistent_broker_gets_back_only_what_it_lost(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    broker = broker_factory("noida")
    broker.start()
    assert broker.persistent
    settings = KafkaSettings.local(broker.bootstrap)
    spec = {feed_topic(RECIPIENT): 2}
    store = SqlAuditStore(make_engine(f"sqlite:///{tmp_path / 'audit.db'}"))
    store.create_schema()
    try:
        entries = [entry(n) for n in range(40)]
        store.record([], entries)
        with KafkaTopicAdmin(settings) as admin:
            admin.ensure_topics(spec)
        maintenance = Maintenance(settings, store, spec, [RECIPIENT])
        assert maintenance.redeliver() == 40  # the first delivery, offsets recorded
        # stand-ins for what a broker loses: two recorded past the partition's end, two
        # recorded at each other's offsets (another message is in their place)
        by_id = {e.exchange_id: e for e in store.undelivered(RECIPIENT, limit=100)}
        a, b = by_id["x-3"], by_id["x-4"]
        assert a.partition is not None and b.partition is not None
        assert a.offset is not None and b.offset is not None
        store.mark_produced(
            [
                ("x-1", 0, 10_000),
                ("x-2", 1, 10_000),
                ("x-3", b.partition, b.offset),
                ("x-4", a.partition, a.offset),
            ]
        )
        before = len(feed_values(settings))
        assert before == 40

        time.sleep(3)  # noida saves every second or two: this state is on disk
        broker.kill()  # SIGKILL, as the reviewer did; the hub then restarts it
        broker.restart()
        kept = feed_values(settings)
        lost = [e for e in entries if e.value not in kept]
        maintenance.request_redelivery(verify=True)
        report = maintenance.tick()
        expected = {e.exchange_id for e in lost} | {"x-1", "x-2", "x-3", "x-4"}
        assert report.verified and report.redelivered == len(expected)
        assert report.redelivered < 40 // 2, "the whole backlog was re-delivered"
        after = feed_values(settings)
        assert len(after) == len(kept) + len(expected)
        assert {e.value for e in entries} <= set(after)  # and nothing is missing
    finally:
        store.close()


def test_the_clients_connection_errors_become_one_line_per_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """About ten aiokafka lines per 100 ms while the broker was away: now one WARNING."""
    moments = iter(float(n) / 10 for n in range(1000))
    outage = BrokerOutage(clock=lambda: next(moments))
    client = logging.getLogger("aiokafka.conn")
    clients = logging.getLogger("aiokafka")  # where every aiokafka logger's records pass
    handler_records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handler_records.append(record)

    keep = Keep()
    keep.addFilter(outage)
    clients.addHandler(keep)
    try:
        for _ in range(20):
            client.error("Unable connect to node with id %s: %s", 1, "refused")
            logging.getLogger("aiokafka").error("Unable to update metadata from [1]")
            logging.getLogger("aiokafka.producer").warning("Got error produce response")
        logging.getLogger("aiokafka").error("something else entirely")
        assert outage.back() == 59
        assert outage.back() is None
        client.error("Unable connect to node with id %s: %s", 1, "refused")  # a new outage
    finally:
        clients.removeHandler(keep)
    shown = [r.getMessage() for r in handler_records]
    assert len(shown) == 3, shown
    assert shown[0].startswith("the broker is not reachable (Unable connect to node)")
    assert handler_records[0].levelname == "WARNING"
    assert shown[1] == "something else entirely"
