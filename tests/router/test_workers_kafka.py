"""Router workers as real processes: group sharing, kill -9, and a broker that loses its data.

Each test runs the hub's own WorkerPool (``python -m services.cli router``) against a fresh
embedded broker and a SQLite audit file, publishes demo traffic, and compares the audit store
with what the pure policy decides for the same input: every decision exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.audit.store import SqlAuditStore
from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.config import ROOT
from services.core.pipeline import process
from services.core.records import audit_record
from services.database.engine import make_engine
from services.hub.maintenance import Maintenance
from services.hub.up import INDEXER
from services.hub.workers import WorkerPool
from services.keys.file_store import FileKeyStore
from services.router.topics import TopicLayout, signals_topic
from services.router.worker import AUDIT_PATH_ENV, audit_path_for_broker
from tests.kafka_fixtures import selected_brokers
from tests.router.helpers import lines, traffic

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]


@dataclass
class Hub:
    broker: EmbeddedBroker
    settings: KafkaSettings
    db: Path
    keys: Path
    spec: dict[str, int]
    recipients: list[str]
    pools: list[WorkerPool]
    indexer: WorkerPool | None = None

    def env(self) -> dict[str, str]:
        return {
            "SCHAKEL_KAFKA_BOOTSTRAP": self.settings.bootstrap,
            "SCHAKEL_DATABASE_URL": f"sqlite:///{self.db}",
            "SCHAKEL_KEYS": str(self.keys),
            "SCHAKEL_STATE_DIR": str(self.db.parent / "state"),
            "SCHAKEL_DEMO": "1",  # the demo traffic is signed with TEST keys
            # the log-first path the broker can run, as `schakel up` picks it
            AUDIT_PATH_ENV: audit_path_for_broker(self.broker.supports_transactions),
        }

    def index(self) -> None:
        """Start the audit indexer (once), as `schakel up` does: on the log-first paths it
        writes the audit records these tests count."""
        if self.indexer is None:
            self.indexer = WorkerPool(
                1, self.env(), self.db.parent / "logs" / "indexer", name="indexer", command=INDEXER
            )
            self.indexer.start()
            self.pools.append(self.indexer)

    def workers(self, count: int) -> WorkerPool:
        self.index()
        pool = WorkerPool(count, self.env(), self.db.parent / "logs", extra_args=("--batch", "200"))
        pool.start()
        self.pools.append(pool)
        return pool

    def audit_ids(self) -> list[str]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db, timeout=10) as conn:
            try:
                return [row[0] for row in conn.execute("SELECT record_id FROM audit_records")]
            except sqlite3.OperationalError:
                return []


def hub_on(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Hub]:
    """Start ``broker``, create the hub's topics and an empty SQLite audit store; yield the hub
    and stop its worker pools afterwards (shared by the worker and scale tests)."""
    broker.start()
    settings = KafkaSettings.local(broker.bootstrap)
    keys = tmp_path / "keys.json"
    FileKeyStore.create(keys)
    db = tmp_path / "audit.db"
    store = SqlAuditStore(make_engine(f"sqlite:///{db}"))
    store.create_schema()
    store.close()
    made = Hub(broker, settings, db, keys, {}, [], [])
    policy = _expected_policy(made)
    made.spec = TopicLayout(signal_partitions=4, feed_partitions=2).spec(
        policy.suppliers, policy.recipients
    )
    made.recipients = sorted(policy.recipients)
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics(made.spec)
    try:
        yield made
    finally:
        for pool in made.pools:
            pool.stop(timeout=10)


@pytest.fixture(params=selected_brokers())
def hub(
    request: pytest.FixtureRequest, broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> Iterator[Hub]:
    kind: BrokerKind = request.param
    yield from hub_on(broker_factory(kind), tmp_path)


def _expected_policy(hub: Hub):
    from services.config import Paths, load_policy
    from services.core.pseudonyms import Pseudonymiser

    paths = Paths.from_env({})
    loaded = load_policy(
        [ROOT / "covenants"],
        paths.schemas,
        paths.reference,
        Pseudonymiser(FileKeyStore.open(hub.keys)),
        today=datetime.now(UTC).date(),
        demo=True,
    )
    assert loaded.policy is not None
    hub.registry = loaded.registry  # type: ignore[attr-defined]
    return loaded.policy


def expected_ids(hub: Hub, values: list[bytes]) -> set[str]:
    policy = _expected_policy(hub)
    now = datetime.now(UTC)
    ids = set()
    for value in values:
        outcome = process(value, hub.registry, policy, now)  # type: ignore[attr-defined]
        ids.update(audit_record(d, actor="x")["record_id"] for d in outcome.decisions)
        if outcome.rejection is not None:
            ids.add(outcome.rejection.rejection_id)
    return ids


def publish(settings: KafkaSettings, values: list[bytes]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(linger_ms=5, acks="all", **settings.client_kwargs_aiokafka())
        await producer.start()
        try:
            futures = [
                await producer.send(signals_topic(orjson.loads(v)["source"]), v) for v in values
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def audited(hub: Hub, expected: set[str]) -> Callable[[], bool]:
    return lambda: len(hub.audit_ids()) >= len(expected)


def assert_exactly_once(hub: Hub, expected: set[str]) -> None:
    ids = hub.audit_ids()
    assert len(ids) == len(set(ids)), "an audit record was written twice"
    assert set(ids) == expected


def test_two_workers_share_partitions_without_loss_or_duplicates(hub: Hub):
    values = lines(traffic(1500, seed=21))
    expected = expected_ids(hub, values)
    pool = hub.workers(2)
    publish(hub.settings, values)
    wait_for(lambda: len(hub.audit_ids()) >= len(expected), 120, "every decision audited")
    time.sleep(1.0)  # a straggler duplicate would land now
    assert_exactly_once(hub, expected)
    assert len(pool.pids()) == 2


def test_kill_9_mid_stream_loses_nothing_and_doubles_nothing(hub: Hub):
    values = lines(traffic(3000, seed=22))
    expected = expected_ids(hub, values)
    pool = hub.workers(1)
    publish(hub.settings, values)
    wait_for(lambda: len(hub.audit_ids()) > len(expected) // 10, 90, "the worker to be mid-stream")
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: bool(pool.supervise()) or True, 1, "")
    wait_for(
        lambda: (pool.supervise(), pool.pids() and pool.pids()[0] != pid)[1],
        30,
        "a restarted worker",
    )
    wait_for(
        lambda: len(hub.audit_ids()) >= len(expected), 150, "every decision audited after the kill"
    )
    time.sleep(1.0)
    assert_exactly_once(hub, expected)


def test_broker_restart_is_noticed_and_no_audited_delivery_is_lost(hub: Hub, tmp_path: Path):
    values = lines(traffic(800, seed=23))
    expected = expected_ids(hub, values)
    hub.workers(1)
    publish(hub.settings, values)
    wait_for(audited(hub, expected), 150, f"all {len(expected)} decisions audited")
    store = SqlAuditStore(make_engine(f"sqlite:///{hub.db}"))
    maintenance = Maintenance(hub.settings, store, hub.spec, hub.recipients)
    wait_for(
        lambda: (
            not store.undelivered() or all(e.partition is not None for e in store.undelivered())
        ),
        30,
        "produced offsets recorded",
    )
    assert_exactly_once(hub, expected)
    # the exchange id each recipient was given (keyed), as the outbox holds the message
    delivered = {orjson.loads(e.value)["exchange_id"] for e in store.undelivered()}
    assert delivered, "the traffic should deliver something"
    hub.broker.restart()
    report = maintenance.tick()
    if hub.broker.persistent:
        assert report.recreated == []  # noida kept its topics and messages
    else:
        assert set(report.recreated) == set(hub.spec)  # tansu lost everything: recreated
        assert report.redelivered == len(delivered)
    # every delivered decision is readable from its feed again, by exchange id
    seen = _read_feeds(hub.settings, hub.recipients, len(delivered))
    assert delivered <= seen
    store.close()


def _read_feeds(settings: KafkaSettings, recipients: list[str], expected: int) -> set[str]:
    from services.router.topics import feed_topic
    from tests.router.test_loop_kafka import read_topic

    async def read() -> set[str]:
        seen: set[str] = set()
        for recipient in recipients:
            for value in await read_topic(settings, feed_topic(recipient), 0, timeout=3):
                seen.add(orjson.loads(value)["exchange_id"])
        return seen

    return asyncio.run(read())
