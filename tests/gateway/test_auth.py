"""Who may call what: tokens, their kinds, revocation, and one's own topic and source only."""

from __future__ import annotations

import orjson
import pytest

from services.gateway.tokens import token_hash
from tests.gateway.helpers import bearer, signal

pytestmark = pytest.mark.timeout(30)


def post(http, headers, body):
    return http.post(
        "/v1/signals",
        content=orjson.dumps(body),
        headers={**headers, "Content-Type": "application/json"},
    )


def test_no_token_is_401_with_a_bearer_challenge(http, tokens, mem_broker):
    for answer in (post(http, {}, signal(1)), http.get("/v1/feed")):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.headers["content-type"] == "application/problem+json"
    assert mem_broker.sends == 0


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Basic bGlhbmRlcjpzZWNyZXQ=",
        "Bearer skl_000000000000_" + "A" * 43,
    ],
)
def test_a_wrong_token_is_401(http, tokens, header):
    answer = post(http, {"Authorization": header}, signal(1))
    assert answer.status_code == 401


def test_a_token_with_the_right_id_but_a_wrong_secret_is_401(http, tokens):
    real = tokens["liander"]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    assert post(http, bearer(forged), signal(1)).status_code == 401
    assert post(http, bearer(real), signal(1)).status_code == 202


def test_a_revoked_token_stops_working_at_once(http, gateway, tokens):
    token_id = tokens["liander"].split("_")[1]
    assert post(http, bearer(tokens["liander"]), signal(1)).status_code == 202
    assert gateway.tokens.revoke(token_id)
    answer = post(http, bearer(tokens["liander"]), signal(2))
    assert answer.status_code == 401
    assert tokens["liander"] not in answer.text
    assert not gateway.tokens.revoke(token_id), "revoking twice reports nothing revoked"


def test_tokens_are_stored_only_as_hashes(engine, tokens):
    from sqlalchemy import text

    with engine.connect() as connection:
        stored = " ".join(
            str(row) for row in connection.execute(text("SELECT * FROM gateway_tokens"))
        )
    for token in tokens.values():
        assert token not in stored
        assert token[len("skl_000000000000_") :] not in stored
        assert token_hash(token) in stored


def test_a_recipient_token_cannot_publish_and_a_partner_token_cannot_read(http, tokens):
    publish = post(http, bearer(tokens["riec-nh"]), signal(1))
    read = http.get("/v1/feed", headers=bearer(tokens["liander"]))
    assert publish.status_code == read.status_code == 403
    assert publish.json()["code"] == read.json()["code"] == "wrong_token_kind"


def test_a_partner_cannot_publish_as_another_partner(http, tokens, mem_broker):
    answer = post(http, bearer(tokens["vitens"]), signal(1, source="liander"))
    assert answer.status_code == 403
    assert answer.json()["code"] == "wrong_source"
    assert answer.json()["signal_id"] == "liander-000001"
    mixed = post(http, bearer(tokens["vitens"]), [signal(1, source="vitens"), signal(2)])
    assert mixed.json()["accepted"] == ["vitens-000001"]
    assert [p["code"] for p in mixed.json()["rejected"]] == ["wrong_source"]
    assert mem_broker.records("signals.liander") == []
    assert len(mem_broker.records("signals.vitens")) == 1


def test_a_partner_publishes_only_to_its_own_topic(http, tokens, mem_broker):
    """Nothing in a request names a topic: the token's partner decides it."""
    answer = http.post(
        "/v1/signals?topic=signals.liander",
        content=orjson.dumps(signal(1, source="vitens")),
        headers={**bearer(tokens["vitens"]), "Content-Type": "application/json"},
    )
    assert answer.status_code == 202
    assert mem_broker.records("signals.liander") == []
    assert len(mem_broker.records("signals.vitens")) == 1
