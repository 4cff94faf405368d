"""The gateway reads every body as strict I-JSON and checks each signal's time: an item with a
member twice, an inexact integer, a lone surrogate or an implausible time gets its own RFC 9457
problem (code and signal id) while the good items of the batch go through.

The gateway checks against the shipped covenants' keys (tests/core/attacks.py signs with the
demo TEST keys) on the test clock's day, 2026-11-22.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.config import Paths
from services.gateway.app import create_gateway_app
from services.gateway.serve import covenant_keys
from tests.core.attacks import ATTACKS, INVALID_UTF8, NOW, PLAUSIBLE_TIMES, good
from tests.gateway.helpers import NOW as GATEWAY_NOW
from tests.gateway.helpers import bearer, issue_all, make_gateway

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def http(engine: Any, mem_broker: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    demo = dataclasses.replace(Paths.from_env({}), demo=True)  # the attacks sign with TEST keys
    keys = covenant_keys(demo) if getattr(request, "param", True) else None
    gateway = make_gateway(engine, mem_broker, keys=keys)
    with TestClient(create_gateway_app(gateway)) as client:
        client.tokens = issue_all(gateway.tokens)  # type: ignore[attr-defined]
        yield client


def post(http: Any, body: bytes) -> Any:
    return http.post(
        "/v1/signals",
        content=body,
        headers={**bearer(http.tokens["liander"]), "Content-Type": "application/json"},
    )


def test_the_attacks_share_the_gateways_clock():
    assert NOW == GATEWAY_NOW


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_attack_alone_is_refused_with_its_code_and_signal_id(http, mem_broker, name):
    attack = ATTACKS[name]
    answer = post(http, attack.raw)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == attack.code
    assert problem["type"].endswith("/" + attack.code)
    assert problem.get("signal_id") == attack.signal_id
    assert problem["index"] == 0
    assert "forged" not in answer.text and "871" not in problem["detail"]
    assert mem_broker.records("signals.liander") == [], "nothing reached the broker"


def test_a_batch_refuses_each_attack_on_its_own_and_lets_the_good_through(http, mem_broker):
    body = (
        b"["
        + b",".join([good("liander-a"), *(a.raw for a in ATTACKS.values()), good("liander-b")])
        + b"]"
    )
    answer = post(http, body)
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert result["accepted"] == ["liander-a", "liander-b"]
    assert [(p["index"], p["code"], p.get("signal_id")) for p in result["rejected"]] == [
        (i, a.code, a.signal_id) for i, a in enumerate(ATTACKS.values(), start=1)
    ]
    produced = [orjson.loads(v)["id"] for _, v in mem_broker.records("signals.liander")]
    assert sorted(produced) == ["liander-a", "liander-b"]


def test_a_body_that_is_not_utf8_is_refused_whole(http, mem_broker):
    answer = post(http, b"[" + good() + b"," + INVALID_UTF8.raw + b"]")
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_unicode"
    assert mem_broker.records("signals.liander") == []


def test_times_just_inside_the_window_are_accepted(http):
    body = b"[" + b",".join(PLAUSIBLE_TIMES.values()) + b"]"
    answer = post(http, body)
    assert answer.status_code == 202, answer.text
    assert len(answer.json()["accepted"]) == len(PLAUSIBLE_TIMES)


@pytest.mark.parametrize("http", [False], indirect=True)
def test_without_covenant_keys_a_time_ahead_of_the_clock_is_still_refused(http, mem_broker):
    """Without keys the gateway knows no retention (the router refuses old signals); the
    clock it has."""
    answer = post(http, ATTACKS["time_in_future"].raw)
    assert answer.status_code == 422 and answer.json()["code"] == "time_in_future"
    answer = post(http, ATTACKS["duplicate_before_signed"].raw)
    assert answer.status_code == 422 and answer.json()["code"] == "duplicate_member"
    assert post(http, ATTACKS["time_too_old"].raw).status_code == 202
