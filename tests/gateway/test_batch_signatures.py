"""Signed batches at the gateway: a batch-signed request goes through for one root
verification, each batch failure is its signal's own problem, and a signal re-sent signed in
another batch is the same signal (idempotent), not a conflict."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest

from services.core.batch_signing import sign_batch
from services.core.signing import sign
from services.demo.keys import demo_key_id, demo_private_key
from services.gateway.accepted import Wanted
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.gateway.helpers import NOW, signal
from tests.gateway.test_signatures import covenants, keys, post, signed_http
from tests.router.helpers import policy_source
from tests.router.test_signatures import MALLORY, NEW_KEY, NEW_KEY_ID

__all__ = ["covenants", "keys", "signed_http"]  # fixtures

pytestmark = pytest.mark.timeout(60)


def batch(*numbers: int, key: Any = NEW_KEY, key_id: str = NEW_KEY_ID) -> list[dict[str, Any]]:
    return sign_batch([signal(n) for n in numbers], key, key_id)


def test_a_signed_batch_is_accepted_for_one_verification(signed_http, mem_broker, keys, covenants):
    keyring = keys()
    before = keyring.roots.verifications
    answer = post(signed_http, signed_http.tokens["liander"], batch(*range(1, 9)))
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == [f"liander-{n:06d}" for n in range(1, 9)]
    assert keyring.roots.verifications == before + 1
    again = post(signed_http, signed_http.tokens["liander"], batch(*range(11, 15)))
    assert len(again.json()["accepted"]) == 4 and keyring.roots.verifications == before + 2
    source = policy_source([covenants])
    records = [
        Consumed(signals_topic("liander"), 0, offset, raw)
        for offset, (_, raw) in enumerate(mem_broker.records("signals.liander"))
    ]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)
    assert routed.dead_letters == [], "the router accepts what the gateway let through"


def test_each_batch_failure_is_its_own_problem_and_the_rest_goes_through(signed_http, mem_broker):
    good = batch(1, 2, 3)
    tampered = dict(good[1], data=dict(good[1]["data"], score=0.11))
    moved = dict(good[2], batch="0" + good[2]["batch"][1:])
    forged = batch(4, key=MALLORY)[0]
    expired = batch(5, key=demo_private_key("liander"), key_id=demo_key_id("liander"))[0]
    foreign = batch(6, key=demo_private_key("pwn"), key_id=demo_key_id("pwn"))[0]
    no_proof = {k: v for k, v in batch(7)[0].items() if k != "batch"}
    body = [good[0], tampered, moved, forged, expired, foreign, no_proof]
    answer = post(signed_http, signed_http.tokens["liander"], body)
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert result["accepted"] == ["liander-000001"]
    assert [(p["index"], p["code"]) for p in result["rejected"]] == [
        (1, "bad_inclusion_path"),
        (2, "bad_inclusion_path"),
        (3, "bad_batch_root"),
        (4, "key_expired"),
        (5, "foreign_key"),
        (6, "malformed_signature"),
    ]
    for problem in result["rejected"]:
        assert problem["status"] == 422 and "871" not in problem["detail"]
    produced = [orjson.loads(v)["id"] for _, v in mem_broker.records("signals.liander")]
    assert produced == ["liander-000001"]


def test_a_re_send_signed_in_another_batch_is_the_same_signal(signed_http, mem_broker):
    token = signed_http.tokens["liander"]
    first = post(signed_http, token, batch(1, 2, 3))
    assert first.json()["accepted"] == ["liander-000001", "liander-000002", "liander-000003"]
    # the same signals re-signed in another batch (another root and path), and singly
    regrouped = [*batch(2, 9), sign(signal(3), NEW_KEY, NEW_KEY_ID)]
    again = post(signed_http, token, regrouped)
    assert again.status_code == 202, again.text
    assert again.json() == {
        "accepted": ["liander-000002", "liander-000009", "liander-000003"],
        "rejected": [],
    }
    produced = sorted(orjson.loads(v)["id"] for _, v in mem_broker.records("signals.liander"))
    assert produced == ["liander-000001", "liander-000002", "liander-000003", "liander-000009"]
    changed = sign_batch([signal(1, score=0.5)], NEW_KEY, NEW_KEY_ID)
    conflict = post(signed_http, token, changed[0])
    assert conflict.status_code == 409 and conflict.json()["code"] == "conflict"


def test_a_claim_made_before_signed_batches_still_matches_its_re_send(signed_http, mem_broker):
    """Claims kept from before this change hold the digest of the whole envelope."""
    envelope = sign(signal(1), NEW_KEY, NEW_KEY_ID)
    whole = hashlib.sha256(orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS))
    accepted = signed_http.gateway.accepted
    accepted.claim("liander", [Wanted("liander-000001", whole.hexdigest())])
    accepted.accepted("liander", ["liander-000001"])
    answer = post(signed_http, signed_http.tokens["liander"], envelope)
    assert answer.status_code == 202 and answer.json()["accepted"] == ["liander-000001"]
    assert mem_broker.records("signals.liander") == [], "answered from the record, not produced"
