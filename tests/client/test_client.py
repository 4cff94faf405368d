"""The partner client against a real gateway server (uvicorn on 127.0.0.1) that fails on
purpose: 5xx answers, unacknowledged signals, rate limits, refused connections."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

from services.client import ClientError, FeedClient, RetryPolicy, SignalClient
from services.gateway.app import create_gateway_app
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.testing import MemoryBroker
from tests.gateway.helpers import (
    Monotonic,
    issue_all,
    make_gateway,
    memory_broker,
    serving,
    signal,
    sqlite_engine,
)

pytestmark = pytest.mark.timeout(60)


class Flaky:
    """ASGI middleware: the first ``failures`` HTTP requests get ``status`` and no work done."""

    def __init__(self, app: FastAPI, failures: int, status: int = 502) -> None:
        self.app = app
        self.failures = failures
        self.status = status

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.failures > 0:
            self.failures -= 1
            await send({"type": "http.response.start", "status": self.status, "headers": []})
            await send({"type": "http.response.body", "body": b"down for a moment"})
            return
        await self.app(scope, receive, send)


class World:
    def __init__(self, settings: GatewaySettings | None = None) -> None:
        self.clock = Monotonic()
        self.engine = sqlite_engine()
        self.broker: MemoryBroker = memory_broker()
        self.gateway: Gateway = make_gateway(
            self.engine, self.broker, settings=settings, monotonic=self.clock
        )
        self.tokens = issue_all(self.gateway.tokens)
        self.sleeps: list[float] = []

    def policy(self, attempts: int = 6) -> RetryPolicy:
        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock.advance(seconds)  # the gateway's rate limiter sees the time pass

        return RetryPolicy(attempts=attempts, base_delay=0.1, sleep=sleep, rng=random.Random(7))

    def produced(self, partner: str = "liander") -> list[dict[str, Any]]:
        return [orjson.loads(v) for _, v in self.broker.records(f"signals.{partner}")]


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    made.engine.dispose()


def test_5xx_answers_are_retried_with_growing_jittered_delays(world):
    with (
        serving(Flaky(create_gateway_app(world.gateway), failures=3)) as url,
        SignalClient(url, world.tokens["liander"], retry=world.policy()) as client,
    ):
        result = client.publish([signal(n) for n in range(3)])
    assert result.accepted == ["liander-000000", "liander-000001", "liander-000002"]
    assert result.rejected == []
    assert len(world.sleeps) == 3
    for retry, delay in enumerate(world.sleeps):
        assert 0 <= delay <= 0.1 * 2**retry


def test_only_unacknowledged_signals_are_sent_again_with_the_same_ids(world):
    world.broker.fail_next = 2
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], retry=world.policy()) as client,
    ):
        result = client.publish([signal(n) for n in range(4)])
    assert sorted(result.accepted) == [f"liander-{n:06d}" for n in range(4)]
    assert sorted(s["id"] for s in world.produced()) == sorted(result.accepted)
    assert world.broker.sends == 6, "4 signals, 2 failed sends retried once"


def test_a_second_publish_of_the_same_signals_produces_nothing_new(world):
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], retry=world.policy(), batch_size=2) as client,
    ):
        first = client.publish([signal(n) for n in range(5)])
        again = client.publish([signal(n) for n in range(5)])
    assert first.accepted == again.accepted and len(first.accepted) == 5
    assert len(world.produced()) == 5


def test_rate_limited_requests_wait_at_least_retry_after():
    world = World(GatewaySettings(rate=0.5, burst=1))
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], retry=world.policy(), batch_size=1) as client,
    ):
        result = client.publish([signal(n) for n in range(3)])
    assert len(result.accepted) == 3
    assert world.sleeps and all(s >= 2.0 for s in world.sleeps), world.sleeps
    world.engine.dispose()


def test_refused_connections_are_retried_then_reported(world):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nothing listens
    with (
        SignalClient(
            f"http://127.0.0.1:{port}", world.tokens["liander"], retry=world.policy(attempts=4)
        ) as client,
        pytest.raises(ClientError, match="4 times") as raised,
    ):
        client.publish([signal(1)])
    assert raised.value.status is None
    assert len(world.sleeps) == 3


def test_refusals_for_good_are_not_retried_and_keep_their_input_index(world):
    envelopes = [signal(n) for n in range(5)]
    envelopes[3] = signal(3, score="high")
    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], retry=world.policy(), batch_size=2) as client,
    ):
        result = client.publish(envelopes)
        with pytest.raises(ClientError) as raised:
            SignalClient(url, "skl_000000000000_" + "A" * 43, retry=world.policy()).publish(
                [signal(9)]
            )
    assert len(result.accepted) == 4
    [problem] = result.rejected
    assert problem["index"] == 3 and problem["signal_id"] == "liander-000003"
    assert raised.value.status == 401
    assert world.sleeps == []


def test_the_sign_hook_is_applied_to_every_signal(world):
    def sign(envelope: dict[str, Any]) -> dict[str, Any]:
        return {**envelope, "signature": f"test-signature-{envelope['id']}"}

    with (
        serving(create_gateway_app(world.gateway)) as url,
        SignalClient(url, world.tokens["liander"], sign=sign, retry=world.policy()) as client,
    ):
        client.publish([signal(1), signal(2)])
    assert sorted(s["signature"] for s in world.produced()) == [
        "test-signature-liander-000001",
        "test-signature-liander-000002",
    ]


def test_the_feed_client_pages_and_resumes_from_its_cursor(world):
    for n in range(5):
        world.broker.append("feed.riec-nh", orjson.dumps({"exchange_id": f"e{n}"}), partition=n % 2)
    with serving(Flaky(create_gateway_app(world.gateway), failures=1, status=503)) as url:
        with FeedClient(url, world.tokens["riec-nh"], retry=world.policy()) as feed:
            first = feed.page(limit=3)
            rest = list(feed.follow(max_pages=2, wait=0.1))
            cursor = feed.cursor
        world.broker.append("feed.riec-nh", b'{"exchange_id": "e5"}')
        with FeedClient(url, world.tokens["riec-nh"], cursor=cursor) as resumed:
            later = resumed.page(wait=1)
        with pytest.raises(ClientError) as raised:
            FeedClient(url, world.tokens["liander"], retry=world.policy()).page()
    got = [m["exchange_id"] for m in first.messages + rest]
    assert sorted(got) == [f"e{n}" for n in range(5)]
    assert [m["exchange_id"] for m in later.messages] == ["e5"]
    assert raised.value.status == 403
    assert len(world.sleeps) == 1, "one 503 retried"


def test_retry_policy_delays_are_capped_and_honour_retry_after():
    policy = RetryPolicy(base_delay=1.0, max_delay=4.0, rng=random.Random(3))
    assert all(0 <= policy.delay(n) <= min(4.0, 2**n) for n in range(10))
    assert policy.delay(0, retry_after=3.0) >= 3.0
    assert policy.delay(0, retry_after=60.0) == 4.0, "never longer than max_delay"
