"""The router loop on a real broker: same decisions as replay, nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError

from services.audit.errors import AuditStoreError
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore
from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core.decision import Decision
from services.core.pipeline import process
from services.core.records import audit_record
from services.database.engine import make_engine
from services.router.loop import AuditPath, LoopConfig, RouterLoop
from services.router.policy_source import PolicySource
from services.router.topics import DEAD_LETTER, TopicLayout, feed_topic, signals_topic
from services.router.worker import audit_path_for_broker
from tests.kafka_fixtures import selected_brokers
from tests.router.helpers import NOW, indexer_running, lines, policy_source, traffic, until

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.fixture(params=selected_brokers())
def fresh_broker(
    request: pytest.FixtureRequest, broker_factory: Callable[..., EmbeddedBroker]
) -> EmbeddedBroker:
    kind: BrokerKind = request.param
    made = broker_factory(kind)
    made.start()
    return made


def prepare_topics(settings: KafkaSettings, partners: set[str], recipients: set[str]) -> None:
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics(
            TopicLayout(signal_partitions=2, feed_partitions=2).spec(partners, recipients)
        )


async def publish(settings: KafkaSettings, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(linger_ms=5, **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        futures = []
        for value in values:
            try:
                source = orjson.loads(value)["source"]
            except Exception:  # noqa: BLE001 - malformed lines go to a known partner's topic
                source = "liander"
            futures.append(await producer.send(signals_topic(source), value))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    settings: KafkaSettings, topic: str, expected: int, timeout: float = 30
) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # as recipients read
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(values) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            values.extend(m.value for ms in batch.values() for m in ms)
        # a short grace period shows there is nothing beyond what was expected
        extra = await consumer.getmany(timeout_ms=500)
        values.extend(m.value for ms in extra.values() for m in ms)
    finally:
        await consumer.stop()
    return values


async def run_until(loop: RouterLoop, done: Callable[[], bool], timeout: float = 60) -> None:
    task = asyncio.create_task(loop.run())
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.1)
    finally:
        await loop.stop()
        await asyncio.wait_for(task, 15)
    assert done(), f"router did not finish in {timeout} s: {loop.stats}"


@pytest.mark.parametrize("path", ["log-first", "sql"])
def test_router_on_the_real_broker_decides_exactly_as_replay(
    fresh_broker: EmbeddedBroker, tmp_path: Path, path: str
):
    """``log-first``: the path the broker can run (as ``schakel up`` picks it), the audit
    records written by the indexer running beside the router; ``sql``: the explicit fallback,
    written by the router itself."""
    audit_path: AuditPath = (
        audit_path_for_broker(fresh_broker.supports_transactions) if path == "log-first" else "sql"
    )
    asyncio.run(_decides_exactly_as_replay(fresh_broker, tmp_path, audit_path))


async def _decides_exactly_as_replay(
    fresh_broker: EmbeddedBroker, tmp_path: Path, audit_path: AuditPath
) -> None:
    settings = KafkaSettings.local(fresh_broker.bootstrap)
    source = policy_source()
    policy = source.current.policy
    signals = traffic(400)
    values = [
        *lines(signals),
        b"{broken",
        orjson.dumps(dict(signals[0], id="x-1", type="nope.nope.v1")),
    ]
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    expected = {}
    for value in values:
        outcome = process(value, source.current.registry, policy, NOW)
        for decision in outcome.decisions:
            record = audit_record(decision, actor="schakel-router")
            expected[record["record_id"]] = (
                record["result"],
                record["recipient"],
                record["covenant"],
            )
    store = SqlAuditStore(make_engine(f"sqlite:///{tmp_path / 'audit.db'}"))
    store.create_schema()
    loop = RouterLoop(
        settings,
        store,
        source,
        LoopConfig(
            topics=[signals_topic(p) for p in sorted(policy.suppliers)], audit_path=audit_path
        ),
        clock=lambda: NOW,
    )
    await loop.start()
    await publish(settings, values)
    if audit_path == "sql":
        await run_until(loop, lambda: loop.stats.signals >= len(values))
    else:
        async with indexer_running(settings, store):
            await run_until(loop, lambda: loop.stats.signals >= len(values))
            await until(lambda: store.count() >= len(expected) + 2, "every record indexed")
            # audit-first: the "produced" note (where each feed message landed) follows the
            # records on the audit topic, so the indexer places the copies a moment later
            await until(
                lambda: all(e.partition is not None for e in store.undelivered()),
                "every feed copy placed",
            )
    assert loop.stats.dead_letters == 2
    assert store.count(action="reject") == 2
    decided = {
        rid: (body["result"], body["recipient"], body["covenant"])
        for rid, body in _all(store)
        if body["action"] != "reject"
    }
    assert decided == expected
    given = {rid: body.get("feed_exchange_id") for rid, body in _all(store)}
    delivered = {given[rid] for rid, v in expected.items() if v[0] == "delivered"}
    feeds = []
    for recipient in sorted(policy.recipients):
        count = sum(1 for v in expected.values() if v[0] == "delivered" and v[1] == recipient)
        feeds.extend(
            orjson.loads(v)["exchange_id"]
            for v in await read_topic(settings, feed_topic(recipient), count)
        )
    assert sorted(feeds) == sorted(delivered)
    dead = [orjson.loads(v) for v in await read_topic(settings, DEAD_LETTER, 2)]
    assert sorted(d["code"] for d in dead) == ["unknown_type", "unparseable"]
    assert store.undelivered() == [] or all(e.partition is not None for e in store.undelivered())
    store.close()


def _all(store: SqlAuditStore) -> list[tuple[str, dict]]:
    out, after = [], 0
    for _ in range(1000):
        page = store.records(after_seq=after, limit=1000)
        if not page:
            break
        out.extend((body["record_id"], body) for _, body in page)
        after = page[-1][0]
    return out


class FailingStore(MemoryAuditStore):
    """Fails the n-th write, like a database that went away mid-stream."""

    def __init__(self, fail_on: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on

    def record(self, audit, outbox):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls == self.fail_on:
            raise AuditStoreError("audit database unreachable (test)")
        return super().record(audit, outbox)


@dataclass
class Published:
    """A broker with topics created and demo traffic published, plus what the policy decides."""

    settings: KafkaSettings
    source: PolicySource
    values: list[bytes]
    decisions: list[Decision]
    config: LoopConfig


async def published(fresh_broker: EmbeddedBroker, count: int, seed: int) -> Published:
    settings = KafkaSettings.local(fresh_broker.bootstrap)
    source = policy_source()
    policy = source.current.policy
    values = lines(traffic(count, seed=seed))
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    decisions = [
        d
        for value in values
        for d in process(value, source.current.registry, policy, NOW).decisions
    ]
    await publish(settings, values)
    config = LoopConfig(  # the explicit sql path: these tests attack the router's own writes
        topics=[signals_topic(p) for p in sorted(policy.suppliers)], batch_max=100, audit_path="sql"
    )
    return Published(settings, source, values, decisions, config)


def test_a_failed_write_stops_the_loop_uncommitted_and_a_restart_loses_nothing(
    fresh_broker: EmbeddedBroker,
):
    asyncio.run(_failed_write(fresh_broker))


async def _failed_write(fresh_broker: EmbeddedBroker) -> None:
    run = await published(fresh_broker, 600, seed=5)
    settings, source, config = run.settings, run.source, run.config
    expected = {d.exchange_id for d in run.decisions}
    failing = FailingStore(fail_on=2)
    first = RouterLoop(settings, failing, source, config, clock=lambda: NOW)
    await first.start()
    task = asyncio.create_task(first.run())
    with pytest.raises(AuditStoreError):
        await asyncio.wait_for(task, 60)
    await first.stop()
    assert first.stats.batches == 1  # the failed batch was not counted, nor committed
    survivor = MemoryAuditStore()
    for record in failing.records(limit=100_000):
        survivor.record([record[1]], [])
    second = RouterLoop(settings, survivor, source, config, clock=lambda: NOW)
    await second.start()
    await run_until(second, lambda: survivor.count() >= len(expected), timeout=90)
    ids = [body["record_id"] for _, body in survivor.records(limit=100_000)]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected


def test_a_failed_delivery_stops_the_loop_uncommitted_and_a_restart_loses_nothing(
    fresh_broker: EmbeddedBroker,
):
    asyncio.run(_failed_delivery(fresh_broker))


async def _failed_delivery(fresh_broker: EmbeddedBroker) -> None:
    """`send` only queues: the loop must await each delivery report and stop on a failure."""
    run = await published(fresh_broker, 500, seed=6)
    settings, source, config, values = run.settings, run.source, run.config, run.values
    policy = source.current.policy
    expected = {d.feed_id for d in run.decisions if d.delivered}
    store = MemoryAuditStore()
    first = RouterLoop(settings, store, source, config, clock=lambda: NOW)
    await first.start()
    producer = first._producer  # inject a broker-side delivery failure
    assert producer is not None
    real_send = producer.send
    sends = 0

    async def failing_send(topic, value=None, key=None, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal sends
        sends += 1
        future = await real_send(topic, value, key=key, **kwargs)
        if sends == 150:  # in the second batch: the report for one message is a failure
            failed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            failed.set_exception(KafkaTimeoutError("delivery failed after retries (test)"))
            return failed
        return future

    producer.send = failing_send  # type: ignore[method-assign]
    task = asyncio.create_task(first.run())
    with pytest.raises(KafkaTimeoutError):
        await asyncio.wait_for(task, 60)
    await first.stop()
    committed_batches = first.stats.batches
    second = RouterLoop(settings, store, source, config, clock=lambda: NOW)
    await second.start()
    await run_until(
        second, lambda: second.stats.signals >= len(values) - committed_batches * 100, timeout=90
    )
    # every delivered decision reached its feed (the failed batch was re-read, not acked)
    seen: set[str] = set()
    for recipient in sorted(policy.recipients):
        for value in await read_topic(settings, feed_topic(recipient), 0, timeout=3):
            seen.add(orjson.loads(value)["exchange_id"])
    assert expected <= seen
