"""A ``read_committed`` reader that starts past an abort marker still reads every later commit.

noida-db 0.2.3 lists every aborted transaction of a partition in every fetch response, whatever
the fetch offset (services/broker/aborted.py). aiokafka, told of a transaction whose abort
marker it never meets, skips every later transactional batch of that producer: a router
restarted after a crash inside a transaction (same producer id, next epoch) had everything it
wrote afterwards dropped by the audit indexer, the router's audit tail and every feed reader
that fetched past the marker. These tests fail without :func:`drop_ended_aborts`.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.broker.aborted import drop_ended_aborts
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from tests.kafka_fixtures import BrokerPool, selected_brokers

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


@pytest.fixture
def noida(broker_pool: BrokerPool) -> KafkaSettings:
    if "noida" not in selected_brokers():
        pytest.skip("noida not among SCHAKEL_TEST_BROKERS")
    return KafkaSettings.local(broker_pool.get("noida").bootstrap)


async def _write(settings: KafkaSettings, topic: str, plan: list[tuple[list[bytes], bool]]) -> None:
    """Transactions of one producer in order: (values, committed?)."""
    producer = AIOKafkaProducer(
        transactional_id=f"t-{topic}", enable_idempotence=True, **settings.client_kwargs_aiokafka()
    )
    await producer.start()
    try:
        for values, commit in plan:
            await producer.begin_transaction()
            for value in values:
                await producer.send_and_wait(topic, value, partition=0)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()


async def _read(settings: KafkaSettings, topic: str, start: int, *, mend: bool) -> list[bytes]:
    """Every value a read_committed reader seeking to ``start`` gets (one record per fetch, so
    every fetch after the first starts past what came before, as a busy reader's do)."""
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=64,  # one small batch per fetch
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    try:
        if mend:
            assert drop_ended_aborts(consumer)
        consumer.assign([tp])
        consumer.seek(tp, start)
        end = (await consumer.end_offsets([tp]))[tp]
        got: list[bytes] = []
        for _ in range(40):  # one batch per fetch: 9 batches at most
            polled = await consumer.getmany(tp, timeout_ms=100)
            got += [m.value or b"" for m in polled.get(tp, [])]
            if await consumer.position(tp) >= end:
                break
        return got
    finally:
        await consumer.stop()


PLAN = [([b"c0"], True), ([b"x1", b"x2"], False), ([b"c1"], True), ([b"c2"], True)]
# offsets: c0 0, commit 1, x1 2, x2 3, abort 4, c1 5, commit 6, c2 7, commit 8


@pytest.mark.parametrize(
    ("start", "want"),
    [
        (0, [b"c0", b"c1", b"c2"]),
        (3, [b"c1", b"c2"]),  # inside the aborted transaction: its rest is still skipped
        (5, [b"c1", b"c2"]),  # past its abort marker: noida still lists it
        (7, [b"c2"]),
    ],
)
def test_a_reader_past_an_abort_reads_every_later_commit_and_no_aborted_record(
    noida: KafkaSettings, start: int, want: list[bytes]
) -> None:
    topic = f"aborted-{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(noida) as admin:
        admin.ensure_topics({topic: 1})
    asyncio.run(_write(noida, topic, PLAN))
    assert asyncio.run(_read(noida, topic, start, mend=True)) == want


def test_without_the_mend_noida_makes_aiokafka_drop_later_commits(noida: KafkaSettings) -> None:
    """The broker bug itself: if this starts to fail, noida lists aborted transactions as Kafka
    does and services/broker/aborted.py may go."""
    topic = f"aborted-{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(noida) as admin:
        admin.ensure_topics({topic: 1})
    asyncio.run(_write(noida, topic, PLAN))
    assert asyncio.run(_read(noida, topic, 5, mend=False)) == []


def test_a_reader_of_uncommitted_records_is_left_as_it_is(noida: KafkaSettings) -> None:
    topic = f"aborted-{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(noida) as admin:
        admin.ensure_topics({topic: 1})

    async def go() -> bool:
        consumer = AIOKafkaConsumer(**noida.client_kwargs_aiokafka())
        await consumer.start()
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.getmany(timeout_ms=50)  # aiokafka's close races a consumer never polled
        try:
            before = consumer._fetcher._client
            return drop_ended_aborts(consumer) and consumer._fetcher._client is before
        finally:
            await consumer.stop()

    assert asyncio.run(go())


def test_every_read_committed_consumer_the_hub_makes_is_mended() -> None:
    """Every module that makes a ``read_committed`` aiokafka consumer (the indexer, the router's
    audit tail, stacking, coverage, the RIEC reader, ``schakel subscribe``, the gateway's feed
    reads) mends it, so none of them drops commits after an aborted transaction on noida."""
    import ast
    from pathlib import Path

    services = Path(__file__).resolve().parents[2] / "services"
    unmended = []
    for path in sorted(services.rglob("*.py")):
        made = mended = 0
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            mended += node.func.id == "drop_ended_aborts"
            made += node.func.id == "AIOKafkaConsumer" and any(
                k.arg == "isolation_level"
                and isinstance(k.value, ast.Constant)
                and k.value.value == "read_committed"
                for k in node.keywords
            )
        if made > mended:
            unmended.append(f"{path.relative_to(services.parent)}: {made} made, {mended} mended")
    assert unmended == []
