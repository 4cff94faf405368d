"""The log-first router on real brokers: the Kafka log is the write-ahead record.

Attacks: a crash between a transaction's begin and its commit (noida) must leave nothing a
``read_committed`` reader sees, and the replay must give the same ids; on Tansu (no
transactions) a crash between the audit acknowledgement and the feed send must leave the
audit record and no feed message, and the replay must produce the logged feed messages without
deciding the batch again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore
from services.audit.verification import public_keys, verify_store
from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.core.audit_log import decode
from services.core.pipeline import process
from services.core.records import audit_record
from services.database.engine import make_engine
from services.gateway.kafka import KafkaFeedSource
from services.indexer.loop import IndexerLoop
from services.keys.testing import MemoryKeyStore
from services.router.loop import AuditPath, LoopConfig, RouterLoop
from services.router.topics import AUDIT, AUDIT_INDEXER_GROUP, feed_topic, signals_topic
from tests.router.helpers import NOW, lines, policy_source, traffic
from tests.router.test_loop_kafka import prepare_topics, publish

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


class CrashError(Exception):
    """Stands for the process dying at a crash point."""


def crash_once(point: str) -> Callable[[str], None]:
    fired: list[str] = []

    def hook(at: str) -> None:
        if at == point and not fired:
            fired.append(at)
            raise CrashError(at)

    return hook


async def read_all(
    settings: KafkaSettings, topics: list[str], *, committed: bool, quiet_s: float = 1.5
) -> list[tuple[str, bytes]]:
    """Everything on ``topics`` as a reader with that isolation level sees it (bounded)."""
    consumer = AIOKafkaConsumer(
        *topics,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed" if committed else "read_uncommitted",
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    seen: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 30
    quiet_until = time.monotonic() + quiet_s + 2
    try:
        while time.monotonic() < min(deadline, quiet_until):
            batch = await consumer.getmany(timeout_ms=300)
            if batch:
                quiet_until = time.monotonic() + quiet_s
            seen.extend((tp.topic, m.value) for tp, ms in batch.items() for m in ms)
    finally:
        await consumer.stop()
    return seen


def expected_ids(values: list[bytes]) -> tuple[set[str], set[str], set[str]]:
    """Record ids, delivered exchange ids and the feed ids recipients see for ``values``."""
    source = policy_source()
    records, exchanges, feed_ids = set(), set(), set()
    for value in values:
        outcome = process(value, source.current.registry, source.current.policy, NOW)
        for decision in outcome.decisions:
            records.add(str(audit_record(decision, actor="schakel-router")["record_id"]))
            if decision.delivered:
                exchanges.add(decision.exchange_id)
                feed_ids.add(str(decision.feed_id))
    return records, exchanges, feed_ids


def router(
    settings: KafkaSettings, path: AuditPath, crash: Callable[[str], None] | None
) -> RouterLoop:
    source = policy_source()
    topics = [signals_topic(p) for p in sorted(source.current.policy.suppliers)]
    return RouterLoop(
        settings,
        MemoryAuditStore(),  # never written on the log-first paths
        source,
        LoopConfig(topics=topics, instance_id="router-0", audit_path=path),
        clock=lambda: NOW,
        crash_point=crash,
    )


async def run_router(loop: RouterLoop, until: Callable[[], bool], timeout: float = 60) -> None:
    await loop.start()
    task = asyncio.create_task(loop.run())
    deadline = time.monotonic() + timeout
    try:
        while not until() and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
    finally:
        await loop.stop()
    if task.done() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]
    await asyncio.wait_for(task, 15)


async def index_all(settings: KafkaSettings, store: object, expected: int) -> IndexerLoop:
    indexer = IndexerLoop(settings, store)  # type: ignore[arg-type]
    await indexer.start()
    task = asyncio.create_task(indexer.run())
    deadline = time.monotonic() + 60
    try:
        while indexer.stats.new < expected and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # and nothing beyond
    finally:
        await indexer.stop()
        await asyncio.wait_for(task, 15)
    return indexer


async def end_of_audit(settings: KafkaSettings) -> int:
    consumer = AIOKafkaConsumer(**settings.client_kwargs_aiokafka())
    await consumer.start()
    try:
        tp = TopicPartition(AUDIT, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def commit_indexer_at(settings: KafkaSettings, offset: int) -> None:
    """The audit indexer's group committed at ``offset``, as if it had indexed up to there."""
    consumer = AIOKafkaConsumer(
        group_id=AUDIT_INDEXER_GROUP, enable_auto_commit=False, **settings.client_kwargs_aiokafka()
    )
    await consumer.start()
    try:
        tp = TopicPartition(AUDIT, 0)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


def feeds_and_audit(
    seen: list[tuple[str, bytes]],
) -> tuple[list[str], list[str], set[str]]:
    """Exchange ids of feed messages, record ids on the audit topic, exchange ids of copies."""
    feeds = [orjson.loads(v)["exchange_id"] for t, v in seen if t.startswith("feed.")]
    messages = [decode(v) for t, v in seen if t == AUDIT]
    records = [str(r["record_id"]) for m in messages for r in m.records]
    copies = {c.exchange_id for m in messages for c in m.feeds}
    # the feed id each copy's message carries: what a recipient sees
    copies |= {str(orjson.loads(c.value)["exchange_id"]) for m in messages for c in m.feeds}
    return feeds, records, copies


def test_crash_inside_the_transaction_leaves_nothing_committed_and_replays_same_ids(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    noida = broker_factory("noida")
    noida.start()
    asyncio.run(_transaction_crash(KafkaSettings.local(noida.bootstrap), tmp_path))


async def _transaction_crash(settings: KafkaSettings, tmp_path: Path) -> None:
    policy = policy_source().current.policy
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    values = lines(traffic(120))
    want_records, want_exchanges, want_feeds = expected_ids(values)
    topics = [feed_topic(r) for r in sorted(policy.recipients)] + [AUDIT]
    await publish(settings, values)

    first = router(settings, "transactional", crash_once("before-commit"))
    with pytest.raises(CrashError):
        await run_router(first, lambda: first.stats.batches > 0)
    # the crashed transaction wrote its records (an uncommitted reader sees them) ...
    dirty = await read_all(settings, topics, committed=False)
    assert any(t == AUDIT for t, _ in dirty) and any(t != AUDIT for t, _ in dirty)
    # ... and a read_committed reader sees none of them: no feed message, no audit record
    assert await read_all(settings, topics, committed=True) == []

    # the second router's start aborts the open transaction: its abort marker goes here
    marker = await end_of_audit(settings)
    second = router(settings, "transactional", None)
    await run_router(second, lambda: second.stats.signals >= len(values))
    feeds, records, copies = feeds_and_audit(await read_all(settings, topics, committed=True))
    assert sorted(feeds) == sorted(want_feeds)  # each delivered exactly once, same ids
    assert sorted(records) == sorted(want_records)  # each decision audited exactly once
    assert copies == want_exchanges | want_feeds

    keys = MemoryKeyStore.for_tests()
    store = SqlAuditStore(
        make_engine(f"sqlite:///{tmp_path / 'audit.db'}"), Checkpointer(KeyStoreSigner(keys))
    )
    store.create_schema()
    # an indexer that resumes past the abort marker (it had indexed up to it) still indexes
    # every record after it: noida lists the aborted transaction in every fetch, which made
    # aiokafka drop everything the restarted router wrote (services/broker/aborted.py)
    await commit_indexer_at(settings, marker + 1)
    await index_all(settings, store, len(want_records))
    assert {str(body["record_id"]) for _, body in store.records(limit=10_000)} == want_records
    assert store.count() == len(want_records)
    assert len(store.undelivered(limit=10_000)) == len(want_exchanges)
    assert verify_store(store, public_keys(keys)).ok
    store.close()


def test_without_transactions_the_audit_record_is_acknowledged_before_any_feed_message(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    tansu = broker_factory("tansu")
    tansu.start()
    asyncio.run(_audit_first_crash(KafkaSettings.local(tansu.bootstrap), tmp_path))


async def _audit_first_crash(settings: KafkaSettings, tmp_path: Path) -> None:
    policy = policy_source().current.policy
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    values = lines(traffic(120))
    want_records, want_exchanges, want_feeds = expected_ids(values)
    topics = [feed_topic(r) for r in sorted(policy.recipients)] + [AUDIT]
    await publish(settings, values)

    first = router(settings, "audit-first", crash_once("audit-acked"))
    with pytest.raises(CrashError):
        await run_router(first, lambda: first.stats.batches > 0)
    feeds, records, copies = feeds_and_audit(await read_all(settings, topics, committed=False))
    assert records, "the killed batch's audit records must be on the log"
    assert feeds == []  # killed between the audit ack and the feed send: no feed message
    assert set(records) <= want_records
    assert copies  # the batch's feed copies went with its records

    second = router(settings, "audit-first", None)
    await run_router(second, lambda: second.stats.signals >= len(values))
    feeds, records_after, copies = feeds_and_audit(
        await read_all(settings, topics, committed=False)
    )
    assert sorted(feeds) == sorted(want_feeds)
    assert set(records_after) == want_records  # every decision logged ...
    # ... once: the restarted router found the killed batch's decisions on the log and
    # did not decide (or log) them again (services/router/audit_tail.py)
    assert len(records_after) == len(want_records)
    assert set(feeds) <= copies  # no feed message without its audit record and copy

    store = SqlAuditStore(make_engine(f"sqlite:///{tmp_path / 'audit.db'}"))
    store.create_schema()
    await index_all(settings, store, len(want_records))
    assert store.count() == len(want_records)  # duplicates dropped by record id
    assert store.undelivered(limit=10_000) != []
    produced = [e for e in store.undelivered(limit=10_000) if e.offset is not None]
    assert {e.exchange_id for e in produced} == want_exchanges  # where each feed landed
    assert verify_store(store, {}).ok
    store.close()


def crash_at(point: str, n: int) -> Callable[[str], None]:
    """Dies the ``n``-th time the loop reaches ``point`` (after committing the batches before)."""
    reached: list[str] = []

    def hook(at: str) -> None:
        if at == point:
            reached.append(at)
            if len(reached) == n:
                raise CrashError(at)

    return hook


async def committed_log(settings: KafkaSettings, topic: str) -> dict[int, list[tuple[int, bytes]]]:
    """(offset, value) of every committed record of ``topic`` per partition, read from the
    beginning (meeting every marker: right without services/broker/aborted.py)."""
    consumer = AIOKafkaConsumer(
        isolation_level="read_committed",
        enable_auto_commit=False,
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    try:
        await consumer.topics()
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        got: dict[int, list[tuple[int, bytes]]] = {p: [] for p in partitions}
        for _ in range(200):
            for tp, messages in (await consumer.getmany(timeout_ms=100)).items():
                got[tp.partition] += [(m.offset, m.value or b"") for m in messages]
            if await caught_up(consumer, ends):
                break
        return got
    finally:
        await consumer.stop()


async def caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def test_routers_killed_in_transactions_again_and_again_lose_nothing_for_readers_resuming_anywhere(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    """Three routers in turn killed inside a transaction, after committing 1, 0 and 2 batches
    (one producer id: each start aborts the transaction before, so noida lists three aborts
    in every fetch), then one that finishes. Every decision is logged and delivered once (the
    restarted routers' audit tails missed nothing), and an audit indexer resuming at any
    offset, and a gateway read of a feed from any offset, get every committed record from
    there on and nothing else."""
    noida = broker_factory("noida")
    noida.start()
    asyncio.run(_crashes_again(KafkaSettings.local(noida.bootstrap), tmp_path))


async def _crashes_again(settings: KafkaSettings, tmp_path: Path) -> None:
    source = policy_source()
    policy = source.current.policy
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    values = lines(traffic(120))
    want_records, _, want_feeds = expected_ids(values)
    await publish(settings, values)
    config = LoopConfig(
        topics=[signals_topic(p) for p in sorted(policy.suppliers)],
        instance_id="router-0",
        batch_max=10,
    )

    def routing(crash: Callable[[str], None] | None) -> RouterLoop:
        return RouterLoop(
            settings, MemoryAuditStore(), source, config, clock=lambda: NOW, crash_point=crash
        )

    done = 0  # signals of the batches committed before a crash
    for n in (2, 1, 3):  # commits n-1 batches, then dies inside the next transaction
        crashing = routing(crash_at("before-commit", n))
        with pytest.raises(CrashError):
            await run_router(crashing, lambda: False)
        done += crashing.stats.signals
    last = routing(None)
    await run_router(last, lambda: done + last.stats.signals >= len(values))

    audit = (await committed_log(settings, AUDIT))[0]
    records = [str(r["record_id"]) for _, v in audit for r in decode(v).records]
    assert sorted(records) == sorted(want_records)  # each decision logged once
    feeds = {feed_topic(r): await committed_log(settings, feed_topic(r)) for r in policy.recipients}
    delivered = [
        orjson.loads(v)["exchange_id"]
        for log in feeds.values()
        for rows in log.values()
        for _, v in rows
    ]
    assert sorted(delivered) == sorted(want_feeds)  # each delivered once

    keys = MemoryKeyStore.for_tests()
    after_each = sorted({0} | {o + 1 for o, _ in audit})  # at commit markers, past aborts
    for n, start in enumerate(after_each[:: max(1, len(after_each) // 4)]):
        want = {str(r["record_id"]) for o, v in audit if o >= start for r in decode(v).records}
        store = SqlAuditStore(
            make_engine(f"sqlite:///{tmp_path / f'audit-{n}.db'}"),
            Checkpointer(KeyStoreSigner(keys)),
        )
        store.create_schema()
        await commit_indexer_at(settings, start)
        await index_all(settings, store, len(want))
        assert {str(b["record_id"]) for _, b in store.records(limit=10_000)} == want, start
        store.close()

    reader = KafkaFeedSource(settings, timeout_s=10)
    for topic, log in feeds.items():
        for partition, rows in log.items():
            end = rows[-1][0] + 2 if rows else 0
            for start in range(0, end + 1, 3):  # before, inside and past aborted transactions
                others = {p: 10**9 for p in log if p != partition}  # at their ends
                batch = await reader.read(
                    topic, {partition: start, **others}, limit=1000, wait_s=0.0
                )
                assert [r.value for r in batch.records] == [v for o, v in rows if o >= start]
