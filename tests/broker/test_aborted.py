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
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.fetch import FetchRequest

from services.broker import aborted
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


def _topic(settings: KafkaSettings) -> str:
    topic = f"aborted-{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({topic: 1})
    return topic


async def _write_mixed(settings: KafkaSettings, topic: str) -> None:
    """Two transactional producers and a plain one interleaved on one partition, one batch a
    record; a value starting with ``x`` was never committed."""
    kwargs = settings.client_kwargs_aiokafka()

    def transactional(name: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            transactional_id=f"{name}-{topic}", enable_idempotence=True, **kwargs
        )

    a, b, a2 = transactional("a"), transactional("b"), transactional("a")
    plain = AIOKafkaProducer(enable_idempotence=True, **kwargs)
    for producer in (a, b, plain):
        await producer.start()

    async def put(producer: AIOKafkaProducer, value: bytes) -> None:
        await producer.send_and_wait(topic, value, partition=0)

    try:
        await a.begin_transaction()
        await put(a, b"c0")
        await a.commit_transaction()
        # a's aborted transaction spans batches of b's aborted one and a plain record
        await a.begin_transaction()
        await put(a, b"x1")
        await b.begin_transaction()
        await put(b, b"x2")
        await put(plain, b"n0")
        await put(a, b"x3")
        await b.abort_transaction()
        await put(a, b"x4")
        await put(a, b"x5")
        await a.abort_transaction()
        await a.begin_transaction()  # two aborts in a row
        await put(a, b"x6")
        await a.abort_transaction()
        await b.begin_transaction()
        await put(b, b"c1")
        await put(b, b"c2")
        await b.commit_transaction()
        # a is killed inside a transaction: its successor (same id) aborts it at its start
        await a.begin_transaction()
        await put(a, b"x7")
        await a2.start()
        await a2.begin_transaction()
        await put(a2, b"c3")
        await a2.commit_transaction()
        # a committed transaction of b ends inside an aborted one of a
        await b.begin_transaction()
        await put(b, b"c4")
        await a2.begin_transaction()
        await put(a2, b"x8")
        await b.commit_transaction()
        await put(a2, b"x9")
        await a2.abort_transaction()
        await a2.begin_transaction()
        await put(a2, b"c5")
        await a2.commit_transaction()
        await put(plain, b"n1")
    finally:
        for producer in (b, a2, plain):
            await producer.stop()
        await a._sender.close()  # fenced: its stop would try to end its transaction


async def _log(settings: KafkaSettings, topic: str) -> list[tuple[int, bytes]]:
    """(offset, value) of every record on the partition, aborted ones included."""
    tp = TopicPartition(topic, 0)
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **settings.client_kwargs_aiokafka())
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        end = (await consumer.end_offsets([tp]))[tp]
        got: list[tuple[int, bytes]] = []
        for _ in range(40):
            polled = await consumer.getmany(tp, timeout_ms=100)
            got += [(m.offset, m.value or b"") for m in polled.get(tp, [])]
            if await consumer.position(tp) >= end:
                break
        return got
    finally:
        await consumer.stop()


async def _committed_reader(settings: KafkaSettings, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=64,  # one small batch per fetch on a broker that honours it
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    assert drop_ended_aborts(consumer)
    consumer.assign([TopicPartition(topic, 0)])
    return consumer


async def _read_from(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int) -> list[bytes]:
    consumer.seek(tp, start)
    await consumer.seek_to_end(tp)  # a ListOffsets request, sent through the mended client
    end = await consumer.position(tp)
    consumer.seek(tp, start)
    got: list[bytes] = []
    for _ in range(40):
        polled = await consumer.getmany(tp, timeout_ms=100)
        got += [m.value or b"" for m in polled.get(tp, [])]
        if await consumer.position(tp) >= end:
            break
    return got


@pytest.mark.parametrize(("window", "fresh"), [(1024, False), (1, False), (1, True)])
def test_every_start_offset_reads_exactly_the_committed_records(
    noida: KafkaSettings, monkeypatch: pytest.MonkeyPatch, window: int, fresh: bool
) -> None:
    """Several aborts of one producer, in a row and spanning other producers' batches, one
    ended by its successor's start, a commit inside an abort: a reader starting at any offset
    (one reader seeking back and forth, or a fresh one each time) gets every committed record
    from there on and no aborted one. A window of 1 makes every look-up read back in steps."""
    monkeypatch.setattr(aborted, "WINDOW", window, raising=False)
    topic = _topic(noida)
    tp = TopicPartition(topic, 0)

    async def go() -> tuple[dict[int, list[bytes]], dict[int, list[bytes]]]:
        await _write_mixed(noida, topic)
        log = await _log(noida, topic)
        end = log[-1][0] + 2
        want = {x: [v for o, v in log if o >= x and not v.startswith(b"x")] for x in range(end)}
        starts = [*range(end - 1, -1, -1), *range(end)]  # back, then forth
        got: dict[int, list[bytes]] = {}
        consumer = None if fresh else await _committed_reader(noida, topic)
        try:
            for start in starts[: end if fresh else None]:
                reader = consumer or await _committed_reader(noida, topic)
                try:
                    got[start] = await _read_from(reader, tp, start)
                    assert got[start] == want[start], f"from {start}"
                finally:
                    if consumer is None:
                        await reader.stop()
        finally:
            if consumer is not None:
                await consumer.stop()
        return got, want

    got, want = asyncio.run(go())
    assert got == want
    assert want[0] == [b"c0", b"n0", b"c1", b"c2", b"c3", b"c4", b"c5", b"n1"]


class _Lookups:
    """The mend's look-ups (``read_uncommitted`` fetches) a mended consumer sends: how many, the
    bytes they brought; ``fail`` fails that many of them first, ``hold`` holds them all."""

    def __init__(self, consumer: AIOKafkaConsumer, *, fail: int = 0) -> None:
        client = consumer._fetcher._client._client
        send: Callable[..., Awaitable[Any]] = client.send
        self.count = self.bytes = 0
        self.fail = fail
        self.hold: asyncio.Event | None = None

        async def counted(node_id: int, request: Any, **kwargs: Any) -> Any:
            if isinstance(request, FetchRequest) and request._isolation_level == 0:
                self.count += 1
                if self.fail > 0:
                    self.fail -= 1
                    raise KafkaConnectionError("the broker went away mid look-up")
                if self.hold is not None:
                    await self.hold.wait()
                response = await send(node_id, request, **kwargs)
                self.bytes += sum(len(r[-1] or b"") for _, rows in response.topics for r in rows)
                return response
            return await send(node_id, request, **kwargs)

        client.send = counted


async def _write_aborts_then_load(settings: KafkaSettings, topic: str, aborts: int) -> None:
    """``aborts`` aborted transactions of one producer, each followed by a commit, then ~2 MB
    of commits of the same producer."""
    producer = AIOKafkaProducer(
        transactional_id=f"t-{topic}",
        enable_idempotence=True,
        linger_ms=5,
        **settings.client_kwargs_aiokafka(),
    )
    await producer.start()
    try:
        for values, commit in [([b"x"], False), ([b"c"], True)] * aborts:
            await producer.begin_transaction()
            for value in values:
                await producer.send(topic, value, partition=0)
            await (producer.commit_transaction() if commit else producer.abort_transaction())
        for n in range(40):
            await producer.begin_transaction()
            for _ in range(50):
                await producer.send(topic, b"v" * 1000, partition=0)
            await producer.send(topic, b"last" if n == 39 else b"v", partition=0)
            await producer.commit_transaction()
    finally:
        await producer.stop()


def test_a_reader_looks_up_once_per_producer_near_its_offset_whatever_the_aborts_listed(
    noida: KafkaSettings,
) -> None:
    """noida never forgets an abort and lists them all in every fetch, and its fetches ignore
    max_bytes. A reader that looked up every listed abort, each from its first offset, read
    the partition from there to its end once per abort: a fresh reader near the end of a ~2 MB
    partition with 30 aborts fetched ~60 MB before its first record (the gateway makes one
    reader per HTTP read). It looks up once per producer, reading back from its offset, does no
    look-up while its fetches bring nothing, and none again for an abort it looked up."""
    topic = _topic(noida)
    tp = TopicPartition(topic, 0)

    async def go() -> None:
        await _write_aborts_then_load(noida, topic, 30)
        consumer = await _committed_reader(noida, topic)
        try:
            lookups = _Lookups(consumer)
            end = (await consumer.end_offsets([tp]))[tp]
            consumer.seek(tp, end)
            for _ in range(3):  # at the end: fetches that bring nothing
                assert (await consumer.getmany(tp, timeout_ms=50)) == {}
            assert lookups.count == 0
            assert await _read_from(consumer, tp, end - 2) == [b"last"]
            assert lookups.count == 1
            assert lookups.bytes < 1_500_000  # the ~1 KB records of the last window and on
            assert await _read_from(consumer, tp, end - 3) == [b"v" * 1000, b"last"]
            assert lookups.count == 1  # known
        finally:
            await consumer.stop()

    asyncio.run(go())


def test_a_look_up_that_fails_fails_the_fetch_which_is_sent_again(noida: KafkaSettings) -> None:
    """A look-up the broker fails is not taken for "no marker" (which would skip commits) nor
    for "ended" (which could deliver an aborted record): the fetch fails and is retried."""
    topic = _topic(noida)
    tp = TopicPartition(topic, 0)

    async def read(start: int) -> tuple[list[bytes], int]:
        consumer = await _committed_reader(noida, topic)
        try:
            lookups = _Lookups(consumer, fail=2)
            return await _read_from(consumer, tp, start), lookups.count
        finally:
            await consumer.stop()

    asyncio.run(_write(noida, topic, PLAN))
    # past the abort marker (the transaction ended), and inside the aborted transaction
    for start in (5, 3):
        got, count = asyncio.run(read(start))
        assert got == [b"c1", b"c2"]
        assert count >= 3  # two failed, then one answered


def test_a_reader_stops_and_is_reassigned_while_looking_up(noida: KafkaSettings) -> None:
    """stop() does not wait for a look-up the broker holds; a reader moved to another topic
    and back reads each right (what it learnt of one topic says nothing about the other)."""
    first, second = _topic(noida), _topic(noida)

    async def go() -> tuple[float, list[list[bytes]]]:
        await _write(noida, first, PLAN)
        await _write(noida, second, [*PLAN[:2], ([b"d1"], True)])
        held = await _committed_reader(noida, first)
        lookups = _Lookups(held)
        lookups.hold = asyncio.Event()  # never set
        held.seek(TopicPartition(first, 0), 5)
        await held.getmany(timeout_ms=300)
        assert lookups.count == 1
        started = time.monotonic()
        await asyncio.wait_for(held.stop(), 10)
        stopped = time.monotonic() - started

        consumer = await _committed_reader(noida, first)
        reads = []
        try:
            for topic in (first, second, first):
                tp = TopicPartition(topic, 0)
                consumer.assign([tp])
                reads.append(await _read_from(consumer, tp, 5))
        finally:
            await consumer.stop()
        return stopped, reads

    stopped, reads = asyncio.run(go())
    assert stopped < 5
    assert reads == [[b"c1", b"c2"], [b"d1"], [b"c1", b"c2"]]


def test_a_reader_of_several_partitions_mends_each_by_its_own_offset(noida: KafkaSettings) -> None:
    """One fetch of two partitions, each with the same producer's aborts at other offsets, one
    fetched from an aborted transaction and one from past its marker (as the gateway reads a
    recipient's partitions): each gets its committed records and no aborted one."""
    topic = f"aborted-{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(noida) as admin:
        admin.ensure_topics({topic: 2})
    tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]

    async def go() -> dict[int, list[bytes]]:
        producer = AIOKafkaProducer(
            transactional_id=f"t-{topic}",
            enable_idempotence=True,
            **noida.client_kwargs_aiokafka(),
        )
        await producer.start()
        try:
            plan = [(b"c0", True), (b"c1", True), (b"x2", False), (b"c3", True)]
            for n, (value, commit) in enumerate(plan):
                await producer.begin_transaction()
                await producer.send_and_wait(topic, value + b"-0", partition=0)
                for _ in range(n + 1):  # partition 1 gets more, its offsets drift
                    await producer.send_and_wait(topic, value + b"-1", partition=1)
                await (producer.commit_transaction() if commit else producer.abort_transaction())
        finally:
            await producer.stop()
        # p0: c0 0, ctl 1, c1 2, ctl 3, x2 4, ctl 5, c3 6, ctl 7
        # p1: c0 0, ctl 1, c1 2-3, ctl 4, x2 5-7, ctl 8, c3 9-12, ctl 13
        consumer = await _committed_reader(noida, topic)
        got: dict[int, list[bytes]] = {0: [], 1: []}
        try:
            consumer.assign(tps)
            consumer.seek(tps[0], 4)  # at p0's aborted transaction
            consumer.seek(tps[1], 9)  # past p1's abort marker
            for _ in range(40):
                for tp, messages in (await consumer.getmany(timeout_ms=100)).items():
                    got[tp.partition] += [m.value or b"" for m in messages]
                if [await consumer.position(tp) for tp in tps] == [8, 14]:
                    break
        finally:
            await consumer.stop()
        return got

    assert asyncio.run(go()) == {0: [b"c3-0"], 1: [b"c3-1"] * 4}


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
