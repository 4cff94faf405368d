"""The gateway over real HTTP against a real embedded broker (tests/kafka_fixtures.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal as signal_module
import subprocess
import sys
import threading
import time
import uuid

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaAdminClient

from services.broker.process import free_loopback_port
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.database.engine import make_engine
from services.gateway.cursor import decode_cursor
from services.gateway.kafka import KafkaFeedSource
from services.gateway.serve import kafka_app, metrics_server
from services.gateway.tables import prepare_tables
from services.gateway.tokens import TokenStore
from services.metrics.settings import MetricsSettings
from services.router.topics import gateway_group, recipient_group
from tests.gateway.helpers import NOW, REGISTRY, bearer, serving, signal

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(180)]


async def produce(settings: KafkaSettings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(acks="all", **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        for n, value in enumerate(values):
            await producer.send_and_wait(topic, value, partition=n % 2)
    finally:
        await producer.stop()


def committed(settings: KafkaSettings, recipient: str) -> dict[int, int]:
    """The offsets of the gateway's group that the hub's maintenance reads to count feed
    messages consumed."""
    group = gateway_group(recipient)
    admin = KafkaAdminClient(**settings.client_kwargs_kafka_python())
    try:
        answer = admin.list_group_offsets([group])
    finally:
        admin.close()
    return {
        tp.partition: meta.offset
        for tp, meta in answer.get(group, {}).items()
        if tp.topic == f"feed.{recipient}"
    }


def test_publish_and_feed_on_a_real_broker(kafka_settings, topic_admin, engine):
    partner, recipient = f"p{uuid.uuid4().hex[:8]}", f"r{uuid.uuid4().hex[:8]}"
    topic_admin.ensure_topics({f"signals.{partner}": 2, f"feed.{recipient}": 2})
    tokens = TokenStore(engine, lambda: NOW)
    partner_token, _ = tokens.issue("partner", partner)
    recipient_token, _ = tokens.issue("recipient", recipient)
    stranger_token, _ = tokens.issue("recipient", f"s{uuid.uuid4().hex[:8]}")
    feed = [orjson.dumps({"exchange_id": f"x{n}"}) for n in range(5)]
    asyncio.run(produce(kafka_settings, f"feed.{recipient}", feed))

    with (
        serving(kafka_app(engine, kafka_settings, REGISTRY, None)) as url,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        batch = [
            signal(1, source=partner),
            signal(2, source=partner, score=9),
            signal(3, source=partner),
        ]
        first = http.post("/v1/signals", json=batch, headers=bearer(partner_token))
        assert first.status_code == 202, first.text
        assert first.json()["accepted"] == [f"{partner}-000001", f"{partner}-000003"]
        assert [p["index"] for p in first.json()["rejected"]] == [1]
        again = http.post("/v1/signals", json=batch, headers=bearer(partner_token))
        assert again.json() == first.json()

        seen: list[str] = []
        cursor = None
        for _ in range(10):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = http.get("/v1/feed", params=params, headers=bearer(recipient_token)).json()
            cursor = page["cursor"]
            if not page["messages"]:
                break
            seen.extend(m["exchange_id"] for m in page["messages"])
        assert sorted(seen) == [f"x{n}" for n in range(5)]
        assert committed(kafka_settings, recipient) == {0: 3, 1: 2}, "the cursor was committed"

        late = threading.Timer(
            1.0,
            lambda: asyncio.run(
                produce(kafka_settings, f"feed.{recipient}", [b'{"exchange_id": "x5"}'])
            ),
        )
        late.start()
        started = time.monotonic()
        woken = http.get(
            "/v1/feed", params={"cursor": cursor, "wait": 20}, headers=bearer(recipient_token)
        )
        late.join()
        assert [m["exchange_id"] for m in woken.json()["messages"]] == ["x5"]
        assert time.monotonic() - started < 15, "the long-poll returned when the message came"

        stranger = http.get("/v1/feed", headers=bearer(stranger_token))
        assert stranger.status_code == 404, "no feed topic: nothing, and never someone else's"

    produced = asyncio.run(
        KafkaFeedSource(kafka_settings).read(f"signals.{partner}", {}, limit=100, wait_s=1.0)
    )
    ids = sorted(orjson.loads(r.value)["id"] for r in produced.records)
    assert ids == [f"{partner}-000001", f"{partner}-000003"], "re-send produced nothing twice"


async def _member(settings: KafkaSettings, topic: str, group: str) -> AIOKafkaConsumer:
    """A consumer that joined ``group`` and holds partitions (a recipient's own client)."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=6_000,  # Kafka's floor; Tansu holds a join for half of it
        heartbeat_interval_ms=500,
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, "the recipient's client never joined"
        await consumer.getmany(timeout_ms=200)
    await consumer.commit(dict.fromkeys(consumer.assignment(), 0))
    return consumer


def test_a_reader_that_leaves_the_event_stream_is_committed_quietly(
    kafka_settings, topic_admin, engine, caplog
):
    """What the stream delivered is committed when the reader disconnects, although the
    recipient's own Kafka client holds its group; no warning, no error, nothing left open."""
    recipient = f"r{uuid.uuid4().hex[:8]}"
    topic = f"feed.{recipient}"
    topic_admin.ensure_topics({topic: 2})
    asyncio.run(
        produce(kafka_settings, topic, [orjson.dumps({"exchange_id": f"x{n}"}) for n in range(5)])
    )
    token, _ = TokenStore(engine, lambda: NOW).issue("recipient", recipient)
    loop = asyncio.new_event_loop()
    member = loop.run_until_complete(_member(kafka_settings, topic, recipient_group(recipient)))
    caplog.set_level(logging.INFO)
    try:
        with (
            serving(kafka_app(engine, kafka_settings, REGISTRY, None)) as url,
            httpx.Client(base_url=url, timeout=60) as http,
        ):
            ids: list[str] = []
            with http.stream("GET", "/v1/feed/events", headers=bearer(token)) as stream:
                for line in stream.iter_lines():
                    if line.startswith("id: "):
                        ids.append(line.removeprefix("id: "))
                    if len(ids) == 5:
                        break  # the reader leaves while the server waits for more
            deadline = time.monotonic() + 30
            while committed(kafka_settings, recipient) != decode_cursor(ids[-1]):
                assert time.monotonic() < deadline, committed(kafka_settings, recipient)
                time.sleep(0.2)
        assert committed(kafka_settings, recipient) == {0: 3, 1: 2}
    finally:
        loop.run_until_complete(member.stop())
        loop.close()
    gc.collect()
    # kafka-python is only this test's own admin client (the gateway runs on aiokafka); on a
    # loaded machine it warns about its own slow polls
    noisy = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.split(".")[0] != "kafka"
    ]
    assert noisy == [], [r.getMessage() for r in noisy]
    assert not any("Unclosed" in r.getMessage() for r in caplog.records)
    assert "a feed stream ended after 5 message(s)" in caplog.messages


def test_schakel_gateway_serves_on_the_given_port(broker_pool, tmp_path):
    """`schakel gateway --port P` against SCHAKEL_KAFKA_BOOTSTRAP, tokens from the CLI."""
    settings = KafkaSettings.local(broker_pool.get("tansu").bootstrap)
    partner = f"p{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({f"signals.{partner}": 1})
    port = free_loopback_port()
    env = {
        **os.environ,
        "SCHAKEL_KAFKA_BOOTSTRAP": settings.bootstrap,
        "SCHAKEL_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        "SCHAKEL_STATE_DIR": str(tmp_path / "var"),
    }
    issued = subprocess.run(
        [sys.executable, "-m", "services.cli", "gateway", "token", "issue", "--partner", partner],
        env=env,
        capture_output=True,
        timeout=60,
        check=True,
    )
    token = issued.stdout.decode().strip()
    served = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "gateway", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        answer = None
        while answer is None and time.monotonic() < deadline:
            assert served.poll() is None, served.stderr.read().decode() if served.stderr else ""
            with contextlib.suppress(httpx.TransportError):
                answer = httpx.post(
                    f"{url}/v1/signals", json=signal(1, source=partner), headers=bearer(token)
                )
            time.sleep(0.2)
        assert answer is not None and answer.status_code == 202, answer and answer.text
    finally:
        served.send_signal(signal_module.SIGINT)
        assert served.wait(30) == 0


def test_ready_once_the_broker_answered_and_metrics_served(kafka_settings, tmp_path):
    """/readyz on the real wiring: the broker watch asks Kafka, the store check the database."""
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    prepare_tables(engine)
    try:
        with (
            serving(app := kafka_app(engine, kafka_settings, REGISTRY, None)) as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            deadline = time.monotonic() + 30
            ready = http.get("/readyz")
            while ready.status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
                ready = http.get("/readyz")
            assert ready.json() == {"status": "ok", "checks": {"broker": "ok", "store": "ok"}}
            assert http.get("/healthz").status_code == 200
            assert http.get("/metrics").status_code == 404  # not where partners connect
            listener = metrics_server(app.state.gateway, MetricsSettings(port=free_loopback_port()))
            assert listener is not None
            try:
                scraped = httpx.get(f"http://127.0.0.1:{listener.port}/metrics", timeout=10).text
            finally:
                listener.stop()
            assert 'schakel_check_ok{check="broker",probe="ready"} 1.0' in scraped
            assert "process_cpu_seconds_total" in scraped
    finally:
        engine.dispose()


def test_a_caught_up_reader_of_a_transactional_feed_is_answered_at_once(broker_pool):
    """The router writes feeds in transactions (noida): each ends in a marker, and an aborted
    one leaves records no reader gets. The positions a read handed back were the offset after
    its last record, a marker: the next read without waiting ("records are there") waited the
    whole fetch timeout (15 s) for records that never came, and an acknowledged cursor left a
    lag of a marker per partition for ever. Positions now move past markers and aborted
    records, and a read of a cursor at one answers as soon as it has fetched past it."""
    settings = KafkaSettings.local(broker_pool.get("noida").bootstrap)
    topic = f"feed.r{uuid.uuid4().hex[:8]}"
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({topic: 2})

    async def write() -> None:
        producer = AIOKafkaProducer(
            transactional_id=f"t-{topic}",
            enable_idempotence=True,
            **settings.client_kwargs_aiokafka(),
        )
        await producer.start()
        try:
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"c0", partition=0)
            await producer.send_and_wait(topic, b"c1", partition=1)
            await producer.commit_transaction()
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"x2", partition=0)
            await producer.abort_transaction()
        finally:
            await producer.stop()

    asyncio.run(write())
    # p0: c0 0, commit 1, x2 2, abort 3; p1: c1 0, commit 1
    source = KafkaFeedSource(settings, timeout_s=10)
    first = asyncio.run(source.read(topic, {}, limit=100, wait_s=0.0))
    assert [r.value for r in first.records] == [b"c0", b"c1"]
    assert first.positions == {0: 4, 1: 2}
    for cursor in (first.positions, {0: 1, 1: 1}):  # and a cursor handed out before
        started = time.monotonic()
        again = asyncio.run(source.read(topic, cursor, limit=100, wait_s=0.0))
        assert again.records == []
        assert again.positions == {0: 4, 1: 2}
        assert time.monotonic() - started < 3, cursor
