"""Per-partner rate limits: token buckets, 429 with Retry-After."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_gateway_app
from services.gateway.context import GatewaySettings
from services.gateway.ratelimit import RateLimiter, retry_after_header
from tests.gateway.helpers import Monotonic, bearer, issue_all, make_gateway, signal

pytestmark = pytest.mark.timeout(30)


def test_a_bucket_allows_its_burst_then_refills_at_its_rate():
    clock = Monotonic()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [None, None, None]
    wait = limiter.take("a")
    assert wait == pytest.approx(0.5)
    assert limiter.take("b") is None, "each key has its own bucket"
    clock.advance(0.5)
    assert limiter.take("a") is None
    assert limiter.take("a") is not None
    clock.advance(100)
    assert [limiter.take("a") for _ in range(4)][:3] == [None, None, None]


def test_buckets_are_bounded():
    limiter = RateLimiter(rate=1.0, burst=1, clock=Monotonic(), max_keys=2)
    for key in ("a", "b", "c"):
        limiter.take(key)
    assert limiter.take("a") is None, "the oldest bucket was dropped, so a starts full again"


def test_retry_after_is_whole_seconds_rounded_up():
    assert [retry_after_header(s) for s in (0.01, 1.0, 1.2)] == ["1", "1", "2"]


def test_over_the_limit_is_429_with_retry_after_per_partner(engine, mem_broker):
    clock = Monotonic()
    gateway = make_gateway(
        engine, mem_broker, settings=GatewaySettings(rate=0.5, burst=2), monotonic=clock
    )
    tokens = issue_all(gateway.tokens)

    def publish(partner: str, number: int):
        return http.post(
            "/v1/signals",
            content=orjson.dumps(signal(number, source=partner)),
            headers={**bearer(tokens[partner]), "Content-Type": "application/json"},
        )

    with TestClient(create_gateway_app(gateway)) as http:
        assert [publish("liander", n).status_code for n in range(2)] == [202, 202]
        limited = publish("liander", 3)
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert limited.json()["code"] == "rate_limited"
        assert publish("vitens", 1).status_code == 202, "another partner has its own bucket"
        clock.advance(2.0)
        assert publish("liander", 3).status_code == 202
    assert mem_broker.sends == 4
