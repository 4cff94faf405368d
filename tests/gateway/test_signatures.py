"""The gateway's early signature check: a badly signed signal is refused at the door with a
422 naming its reason; well signed ones go through, and the router still verifies.

The covenants are ``covenants/`` with Liander's demo TEST key expired on 2026-11-01 and a
successor key in force (as in the router's signature tests), loaded in demo mode, so every
reason shows.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from services.config import ROOT, Paths
from services.core.covenant.key_edit import add_key_text
from services.core.signing import sign
from services.demo.keys import demo_key_id, demo_private_key, demo_public_key
from services.gateway.app import create_gateway_app
from services.gateway.errors import GatewayError
from services.gateway.serve import covenant_keys
from services.gateway.signatures import CovenantKeys
from services.gateway.testing import MemoryBroker
from services.metrics.testing import value
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.gateway.helpers import NOW, Monotonic, bearer, issue_all, make_gateway, signal
from tests.router.helpers import policy_source
from tests.router.test_signatures import MALLORY, NEW_KEY, NEW_KEY_ID, rotated_covenants

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def covenants(tmp_path: Path) -> Path:
    return rotated_covenants(tmp_path)


@pytest.fixture
def keys(covenants: Path) -> CovenantKeys:
    defaults = Paths.from_env({})
    return covenant_keys(
        Paths((covenants,), defaults.schemas, defaults.reference, defaults.state, demo=True)
    )


@pytest.fixture
def signed_http(engine, mem_broker, keys) -> Any:
    gateway = make_gateway(engine, mem_broker, keys=keys)
    with TestClient(create_gateway_app(gateway)) as client:
        client.tokens = issue_all(gateway.tokens)  # type: ignore[attr-defined]
        client.gateway = gateway  # type: ignore[attr-defined]
        yield client


def good(number: int) -> dict[str, Any]:
    return sign(signal(number), NEW_KEY, NEW_KEY_ID)


def unsigned(number: int) -> dict[str, Any]:
    return signal(number)


CASES = {
    "unsigned": lambda: unsigned(2),
    "bad_signature": lambda: sign(signal(3), MALLORY, NEW_KEY_ID),
    "foreign_key": lambda: sign(signal(4), demo_private_key("pwn"), demo_key_id("pwn")),
    "tampered": lambda: dict(good(5), data=dict(good(5)["data"], score=0.11)),
    "key_expired": lambda: sign(signal(6), demo_private_key("liander"), demo_key_id("liander")),
    "unknown_key": lambda: sign(signal(7), NEW_KEY, "liander-1999"),
    "malformed_signature": lambda: dict(signal(8), signature="rsa:who-knows:abc"),
}
EXPECTED = {**{name: name for name in CASES}, "tampered": "bad_signature"}


def post(http: Any, token: str, body: object) -> Any:
    return http.post(
        "/v1/signals",
        content=orjson.dumps(body),
        headers={**bearer(token), "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_badly_signed_signal_is_refused_with_its_reason(signed_http, mem_broker, case):
    answer = post(signed_http, signed_http.tokens["liander"], CASES[case]())
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == EXPECTED[case]
    assert problem["type"].endswith("/" + EXPECTED[case])
    assert problem["signal_id"].startswith("liander-")
    assert "871" not in problem["detail"], "the reason never repeats an identifier"
    assert mem_broker.records("signals.liander") == [], "nothing reached the broker"


def test_a_mixed_batch_lets_the_well_signed_through(signed_http, mem_broker):
    batch = [good(1), *(make() for make in CASES.values()), good(9)]
    answer = post(signed_http, signed_http.tokens["liander"], batch)
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == ["liander-000001", "liander-000009"]
    assert [p["code"] for p in body["rejected"]] == [EXPECTED[c] for c in CASES]
    produced = [orjson.loads(v)["id"] for _, v in mem_broker.records("signals.liander")]
    assert sorted(produced) == ["liander-000001", "liander-000009"]
    metrics = signed_http.gateway.metrics.registry
    labels = {"partner": "liander", "type": "energy.consumption_anomaly.v1"}
    assert (
        value(
            metrics,
            "schakel_gateway_signals_total",
            {**labels, "result": "accepted", "code": "none"},
        )
        == 2
    )
    assert (
        value(
            metrics,
            "schakel_gateway_signals_total",
            {**labels, "result": "rejected", "code": "bad_signature"},
        )
        == 2
    )


def test_without_keys_signatures_are_left_to_the_router(engine, mem_broker, covenants):
    """The router verifies what the gateway let through (defence in depth)."""
    gateway = make_gateway(engine, mem_broker, keys=None)
    tokens = issue_all(gateway.tokens)
    with TestClient(create_gateway_app(gateway)) as http:
        answer = post(http, tokens["liander"], [good(1), CASES["bad_signature"]()])
    assert answer.json()["accepted"] == ["liander-000001", "liander-000003"]
    source = policy_source([covenants])
    records = [
        Consumed(signals_topic("liander"), 0, offset, raw)
        for offset, (_, raw) in enumerate(mem_broker.records("signals.liander"))
    ]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)
    assert [orjson.loads(d.value)["code"] for d in routed.dead_letters] == ["bad_signature"]


def test_a_partner_no_covenant_names_may_send_unsigned(signed_http):
    """As in the router: its signals are withheld there, not refused here."""
    broker: MemoryBroker = signed_http.gateway.producer
    broker.admin.ensure_topics({"signals.vitens": 1})
    answer = post(signed_http, signed_http.tokens["vitens"], signal(1, source="vitens"))
    assert answer.status_code == 202, answer.text


def test_keys_are_reloaded_when_the_covenants_change(covenants):
    clock = Monotonic()
    defaults = Paths.from_env({})
    keys = CovenantKeys(
        [covenants],
        defaults.schemas,
        defaults.reference,
        today=NOW.date,
        monotonic=clock,
        demo=True,
    )
    before = keys()
    assert NEW_KEY_ID in before.partner("liander", NOW.date()).keys
    path = covenants / "drugslocaties-nh" / "2025.1.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(NEW_KEY_ID, "liander-2027"), encoding="utf-8")
    assert keys() is before, "looked at again only after a while"
    clock.advance(60)
    after = keys()
    assert set(after.partner("liander", NOW.date()).keys) >= {"liander-2027"}
    path.write_text("covenant: [broken", encoding="utf-8")
    time.sleep(0.01)  # a new modification time
    clock.advance(60)
    assert keys() is after, "a covenant set that does not check keeps the keys in force"


def test_a_gateway_not_in_demo_mode_refuses_covenants_registering_a_test_key(tmp_path: Path):
    folder = tmp_path / "covenants"
    shutil.copytree(ROOT / "covenants", folder)
    path = folder / "drugslocaties-nh" / "2025.1.yaml"
    text = add_key_text(
        path.read_text(encoding="utf-8"), "liander", "liander-2026", demo_public_key("liander")
    )
    path.write_text(text, encoding="utf-8")
    defaults = Paths.from_env({})
    with pytest.raises(GatewayError, match="covenants have errors"):
        CovenantKeys([folder], defaults.schemas, defaults.reference, today=NOW.date)
    in_demo = CovenantKeys(
        [folder], defaults.schemas, defaults.reference, today=NOW.date, demo=True
    )
    assert "liander-2026" in in_demo().partner("liander", NOW.date()).keys
