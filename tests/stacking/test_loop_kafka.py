"""The stacking worker on a real broker: a crash after the store commit (before the offsets
are committed) and a restart lose nothing and double nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore
from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core.stacking.alerts import Alert
from services.database.engine import make_engine
from services.demo.generator import generate
from services.demo.keys import DemoSigner
from services.router.loop import LoopConfig, RouterLoop
from services.router.topics import TopicLayout, signals_topic
from services.stacking.errors import StackingError
from services.stacking.loop import StackingLoop, StackingLoopConfig
from services.stacking.store import SqlStackingStore
from tests.kafka_fixtures import selected_brokers
from tests.router.helpers import policy_source
from tests.stacking.helpers import NOW, Hub, make_hub, records

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture(params=selected_brokers())
def fresh_broker(
    request: pytest.FixtureRequest, broker_factory: Callable[..., EmbeddedBroker]
) -> EmbeddedBroker:
    kind: BrokerKind = request.param
    made = broker_factory(kind)
    made.start()
    return made


class CrashingStore(SqlStackingStore):
    """Fails once when marking alerts published: the worker dies after its store commit."""

    crashed = False

    def mark_published(self, alerts: list[Alert]) -> None:
        if not CrashingStore.crashed:
            CrashingStore.crashed = True
            raise StackingError("simulated crash after the store commit")
        super().mark_published(alerts)


def make_loop(
    hub: Hub, settings: KafkaSettings, store: SqlStackingStore, audit: SqlAuditStore
) -> StackingLoop:
    topics = [signals_topic(p) for p in sorted(hub.policy.suppliers) if p != "schakel"]
    return StackingLoop(
        settings,
        store,
        audit,
        hub.step(store.load()),
        hub.config,
        hub.pseudonymiser,
        StackingLoopConfig(topics=topics, batch_max=200, session_timeout_ms=6000),
        clock=lambda: NOW,
        sign=DemoSigner(),
    )


async def publish(settings: KafkaSettings, values: list[dict[str, object]]) -> None:
    producer = AIOKafkaProducer(linger_ms=5, **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        sent = [
            await producer.send(signals_topic(str(v["source"])), orjson.dumps(v)) for v in values
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_all(settings: KafkaSettings, topic: str, settle_s: float = 1.5) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline, quiet_since = time.monotonic() + 30, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < settle_s:
            batch = await consumer.getmany(timeout_ms=300)
            got = [m.value or b"" for ms in batch.values() for m in ms]
            if got:
                values.extend(got)
                quiet_since = time.monotonic()
    finally:
        await consumer.stop()
    return values


async def run_until(loop: StackingLoop, done: Callable[[], bool], timeout: float = 60) -> None:
    await loop.start()
    task = asyncio.create_task(loop.run())
    deadline = time.monotonic() + timeout
    try:
        while not done() and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await loop.stop()
        await asyncio.wait({task}, timeout=15)


def test_a_crash_and_restart_lose_nothing(fresh_broker: EmbeddedBroker, tmp_path: Path) -> None:
    asyncio.run(_crash_and_restart(fresh_broker, tmp_path))


async def _crash_and_restart(broker: EmbeddedBroker, tmp_path: Path) -> None:
    CrashingStore.crashed = False
    hub = make_hub()
    signals = generate(1200, seed=3, start=datetime(2026, 8, 1, tzinfo=UTC), days=60).signals
    expected = hub.step().run(records(signals), NOW)
    want = {a.location: a.evidence_keys for a in expected.changes.alerts.values()}
    assert want
    settings = KafkaSettings.local(broker.bootstrap)
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics(TopicLayout(signal_partitions=2).spec(hub.policy.suppliers, ()))
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    audit = SqlAuditStore(make_engine(url))
    audit.create_schema()  # the migrations (0005) make the stacking tables too
    await publish(settings, signals)

    first = make_loop(hub, settings, CrashingStore(make_engine(url)), audit)
    await run_until(first, lambda: CrashingStore.crashed)
    assert CrashingStore.crashed and first.stats.alerts_published == 0

    store = SqlStackingStore(make_engine(url))
    second = make_loop(hub, settings, store, audit)

    def finished() -> bool:
        current = {a.location: a.evidence_keys for a in store.alerts()}
        used = audit.count(action="use")
        return current == want and used >= expected.used and not store.unpublished()

    await run_until(second, finished)
    assert {a.location: a.evidence_keys for a in store.alerts()} == want
    assert store.unpublished() == []
    published = [orjson.loads(v) for v in await read_all(settings, signals_topic("schakel"))]
    newest = {a.alert_id: a.signal_id for a in store.alerts()}
    assert {p["data"]["alert_id"] for p in published} == set(newest)
    assert set(newest.values()) <= {p["id"] for p in published}
    assert all(p["source"] == "schakel" and p.get("signature") for p in published)
    assert audit.count(action="use") == expected.used  # each use audited once, replays too

    # the router routes the alerts like any signal: to the RIEC, pseudonymised, audited
    router_audit = MemoryAuditStore()
    router = RouterLoop(
        settings,
        router_audit,
        policy_source(),
        LoopConfig(  # the router writes its own audit here (no indexer runs in this test)
            topics=[signals_topic("schakel")], session_timeout_ms=6000, audit_path="sql"
        ),
        clock=lambda: NOW,
    )
    await router.start()
    task = asyncio.create_task(router.run())
    deadline = time.monotonic() + 60
    while router.stats.signals < len(published) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await router.stop()
    await asyncio.wait({task}, timeout=15)
    assert router.stats.signals == len(published) and router.stats.dead_letters == 0
    delivered = router_audit.count(origin="schakel", result="delivered", recipient="riec-nh")
    assert delivered == len({p["id"] for p in published})
    store.close()
    audit.close()
