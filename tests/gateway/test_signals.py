"""POST /v1/signals on the in-memory broker: validation, batches, limits, idempotency."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient

from services.core.envelope import MAX_ENVELOPE_BYTES
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.testing import MemoryBroker
from tests.gateway.helpers import bearer, make_gateway, signal

pytestmark = pytest.mark.timeout(30)


def post(http: TestClient, token: str, body: object, **headers: str):
    return http.post(
        "/v1/signals",
        content=orjson.dumps(body),
        headers={**bearer(token), "Content-Type": "application/json", **headers},
    )


def produced_ids(broker: MemoryBroker, partner: str = "liander") -> list[str]:
    return [orjson.loads(value)["id"] for _, value in broker.records(f"signals.{partner}")]


def test_one_signal_is_accepted_after_the_broker_acknowledged_it(http, tokens, mem_broker):
    answer = post(http, tokens["liander"], signal(1))
    assert answer.status_code == 202
    assert answer.json() == {"accepted": ["liander-000001"], "rejected": []}
    [(key, value)] = mem_broker.records("signals.liander")
    assert key == b"liander-000001"
    assert orjson.loads(value) == signal(1)


def test_a_mixed_batch_lets_the_good_signals_through_with_a_problem_per_bad_one(
    http, tokens, mem_broker
):
    bad_schema = signal(2, score="high")
    no_time = signal(3)
    del no_time["time"]
    batch = [signal(1), bad_schema, no_time, "not an object", signal(5)]
    answer = post(http, tokens["liander"], batch)
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == ["liander-000001", "liander-000005"]
    problems = {p["index"]: p for p in body["rejected"]}
    assert sorted(problems) == [1, 2, 3]
    assert problems[1]["signal_id"] == "liander-000002"
    assert problems[1]["status"] == 422 and problems[1]["type"].endswith(problems[1]["code"])
    assert "time" in problems[2]["detail"] and problems[2]["code"] == "invalid_envelope"
    assert "signal_id" not in problems[3]
    assert sorted(produced_ids(mem_broker)) == ["liander-000001", "liander-000005"]


def test_problem_details_never_echo_the_identifier(http, tokens):
    answer = post(http, tokens["liander"], signal(1, ean="871685900000000012"))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert "871685900000000012" not in answer.text


def test_a_batch_with_no_good_signal_is_one_problem_listing_each(http, tokens, mem_broker):
    answer = post(http, tokens["liander"], [signal(1, score=7), {"id": "x"}])
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "batch_rejected"
    assert [e["index"] for e in body["errors"]] == [0, 1]
    assert mem_broker.sends == 0


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (b"[]", 400, "empty"),
        (b"42", 400, "empty"),
        (b'"text"', 400, "empty"),
    ],
)
def test_malformed_bodies_are_refused(http, tokens, content, status, code):
    answer = http.post(
        "/v1/signals",
        content=content,
        headers={**bearer(tokens["liander"]), "Content-Type": "application/json"},
    )
    assert answer.status_code == status
    assert answer.json()["code"] == code


def test_only_json_is_accepted(http, tokens):
    answer = http.post(
        "/v1/signals",
        content=orjson.dumps(signal(1)),
        headers={**bearer(tokens["liander"]), "Content-Type": "text/plain"},
    )
    assert answer.status_code == 415


def test_an_oversized_body_is_refused_unread(engine, mem_broker, tokens):
    gateway = make_gateway(engine, mem_broker, settings=GatewaySettings(max_body_bytes=2000))
    with TestClient(_app(gateway)) as http:
        big = [signal(n) for n in range(10)]
        answer = post(http, tokens["liander"], big)
        assert answer.status_code == 413 and answer.json()["code"] == "body_too_large"

        def chunks():  # no Content-Length: the limit holds while streaming too
            yield b"["
            for n in range(10):
                yield orjson.dumps(signal(n)) + (b"," if n < 9 else b"]")

        streamed = http.post(
            "/v1/signals",
            content=chunks(),
            headers={**bearer(tokens["liander"]), "Content-Type": "application/json"},
        )
        assert streamed.status_code == 413
    assert mem_broker.sends == 0


def test_too_many_signals_in_one_batch(engine, mem_broker, tokens):
    gateway = make_gateway(engine, mem_broker, settings=GatewaySettings(max_batch=3))
    with TestClient(_app(gateway)) as http:
        answer = post(http, tokens["liander"], [signal(n) for n in range(4)])
    assert answer.status_code == 413 and answer.json()["code"] == "batch_too_large"


def test_an_oversized_signal_in_a_batch_is_refused_alone(http, tokens):
    huge = signal(2, pattern="x" * (MAX_ENVELOPE_BYTES + 10))
    answer = post(http, tokens["liander"], [signal(1), huge])
    assert answer.status_code == 202
    [problem] = answer.json()["rejected"]
    assert problem["status"] == 413 and problem["signal_id"] == "liander-000002"


def test_a_resend_gets_the_same_answer_and_is_produced_once(http, tokens, mem_broker):
    first = post(http, tokens["liander"], [signal(1), signal(2)])
    again = post(http, tokens["liander"], [signal(2), signal(1)])
    single = post(http, tokens["liander"], signal(1))
    assert first.status_code == again.status_code == single.status_code == 202
    assert again.json()["accepted"] == ["liander-000002", "liander-000001"]
    assert single.json() == {"accepted": ["liander-000001"], "rejected": []}
    assert sorted(produced_ids(mem_broker)) == ["liander-000001", "liander-000002"]


def test_the_same_signal_twice_in_one_batch_is_produced_once(http, tokens, mem_broker):
    answer = post(http, tokens["liander"], [signal(1), signal(1)])
    assert answer.json()["accepted"] == ["liander-000001"]
    assert answer.json()["rejected"] == []
    assert produced_ids(mem_broker) == ["liander-000001"]


def test_a_reused_id_with_other_content_is_a_conflict(http, tokens, mem_broker):
    post(http, tokens["liander"], signal(1))
    answer = post(http, tokens["liander"], signal(1, score=0.5))
    assert answer.status_code == 409 and answer.json()["code"] == "conflict"
    inside = post(http, tokens["liander"], [signal(7), signal(7, score=0.1)])
    assert [p["code"] for p in inside.json()["rejected"]] == ["conflict"]
    assert len(produced_ids(mem_broker)) == 2


def test_signals_the_broker_did_not_acknowledge_are_refused_and_can_be_sent_again(
    http, tokens, mem_broker
):
    mem_broker.fail_next = 1
    failed = post(http, tokens["liander"], signal(1))
    assert failed.status_code == 503
    assert failed.headers["retry-after"] == "1"
    assert failed.json()["code"] == "broker_unavailable"
    assert produced_ids(mem_broker) == []
    retried = post(http, tokens["liander"], signal(1))
    assert retried.status_code == 202
    assert produced_ids(mem_broker) == ["liander-000001"]


def test_ids_are_per_partner(http, tokens, mem_broker):
    """Two partners may use the same signal id; each is its own signal."""
    first = post(http, tokens["liander"], signal(1, source="liander") | {"id": "shared-1"})
    second = post(http, tokens["vitens"], _water("shared-1"))
    assert first.status_code == second.status_code == 202
    assert produced_ids(mem_broker, "vitens") == ["shared-1"]


def _water(signal_id: str) -> dict[str, object]:
    return signal(1, source="vitens") | {"id": signal_id}


def _app(gateway: Gateway):
    from services.gateway.app import create_gateway_app

    return create_gateway_app(gateway)


def test_what_is_produced_canonicalises_like_what_the_partner_signed(http, tokens, mem_broker):
    """The gateway re-serialises each envelope of a batch; the canonical form a signature
    covers (services/core/signing.py) must not change on the way."""
    from services.core.signing import canonical_envelope

    sent = signal(1, score=0.000001, kwh_expected=310.0, kwh_observed=1e21, pattern="other")
    sent["data"]["period"] = {"start": "2026-10-01", "end": "2026-10-31"}
    body = orjson.dumps([sent]).replace(b'"other"', b'"\\u006fther"')  # escaped as sent
    answer = http.post(
        "/v1/signals",
        content=body,
        headers={**bearer(tokens["liander"]), "Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    [(_, produced)] = mem_broker.records("signals.liander")
    assert canonical_envelope(orjson.loads(produced)) == canonical_envelope(orjson.loads(body)[0])
