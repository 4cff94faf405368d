"""The router's signature check in its pure batch step, on the shipped covenants.

Liander's demo TEST key is given a ``valid_until`` in the past (in the demo key file) and a
successor (a key of the test's own, registered with ``schakel covenant add-key``'s text edit)
in a copy of ``covenants/``, loaded in demo mode, so one batch shows every outcome: the valid signal is
delivered; unsigned, forged, re-signed by another partner, tampered and expired-key signals
are dead-lettered and audited as rejected, each with its reason.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.config import ROOT
from services.core.covenant.key_edit import add_key_text
from services.core.pipeline import process
from services.core.signing import public_key_base64, sign
from services.demo.keys import demo_key_id, demo_private_key, demo_public_key
from services.router.batch import Consumed, route_batch
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic
from tests.router.helpers import NOW, policy_source, traffic

NEW_KEY_ID = "liander-2026"
NEW_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"TEST KEY liander-2026").digest())
MALLORY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"TEST KEY mallory").digest())
IDENTIFIER_FIELDS = ("ean", "address", "bag_id")


def rotated_covenants(tmp: Path) -> Path:
    """``covenants/`` with Liander's demo key expired on 2026-11-01 and a successor in force."""
    target = tmp / "covenants"
    shutil.copytree(ROOT / "covenants", target)
    demo = target / "demo" / "keys.yaml"
    text = demo.read_text(encoding="utf-8")
    old = f'{{id: demo-liander, ed25519: "{demo_public_key("liander")}"}}'
    assert text.count(old) == 1
    demo.write_text(text.replace(old, old[:-1] + ", valid_until: 2026-11-01}"), encoding="utf-8")
    path = target / "drugslocaties-nh" / "2025.1.yaml"
    new = public_key_base64(NEW_KEY.public_key())
    text = add_key_text(
        path.read_text(encoding="utf-8"), "liander", NEW_KEY_ID, new, valid_from=date(2026, 10, 1)
    )
    path.write_text(text, encoding="utf-8")
    return target


def cases(source: PolicySource) -> dict[str, bytes]:
    """One signal per expected outcome, from a Liander signal the policy delivers."""
    registry, policy = source.current.registry, source.current.policy
    good: dict[str, Any] | None = None
    for envelope in traffic(300):
        if envelope["type"] != "energy.consumption_anomaly.v1":
            continue
        resigned = sign(envelope, NEW_KEY, NEW_KEY_ID)
        outcome = process(orjson.dumps(resigned), registry, policy, NOW)
        if any(d.delivered for d in outcome.decisions):
            good = resigned
            break
    assert good is not None, "no delivered Liander signal in the demo traffic"
    unsigned = {k: v for k, v in good.items() if k != "signature"}
    data = dict(good["data"], score=round(1.0 - good["data"]["score"], 3))
    return {
        "delivered": orjson.dumps(good),
        "unsigned": orjson.dumps(dict(unsigned, id="sig-unsigned")),
        "forged": orjson.dumps(sign(dict(unsigned, id="sig-forged"), MALLORY, NEW_KEY_ID)),
        "foreign_key": orjson.dumps(
            sign(dict(unsigned, id="sig-pwn"), demo_private_key("pwn"), demo_key_id("pwn"))
        ),
        "tampered": orjson.dumps(
            dict(sign(dict(unsigned, id="sig-tampered"), NEW_KEY, NEW_KEY_ID), data=data)
        ),
        "key_expired": orjson.dumps(
            sign(dict(unsigned, id="sig-old"), demo_private_key("liander"), demo_key_id("liander"))
        ),
    }


EXPECTED_CODES = {
    "unsigned": "unsigned",
    "forged": "bad_signature",
    "foreign_key": "foreign_key",
    "tampered": "bad_signature",
    "key_expired": "key_expired",
}


def test_every_bad_signature_is_dead_lettered_and_audited_with_its_reason(tmp_path: Path):
    source = policy_source([rotated_covenants(tmp_path)])
    values = cases(source)
    records = [Consumed(signals_topic("liander"), 0, i, v) for i, v in enumerate(values.values())]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)

    letters = [orjson.loads(d.value) for d in routed.dead_letters]
    assert [d["code"] for d in letters] == list(EXPECTED_CODES.values())
    for letter, name in zip(letters, EXPECTED_CODES, strict=True):
        assert base64.b64decode(letter["original"]) == values[name]
        assert letter["partner"] == "liander"
    rejections = [r for r in routed.audit if r["action"] == "reject"]
    assert [r["reason"].split(":", 1)[0] for r in rejections] == list(EXPECTED_CODES.values())
    good = orjson.loads(values["delivered"])
    for record in rejections:
        assert record["result"] == "rejected" and record["origin"] == "liander"
        assert "Fix" in record["reason"]
        for field in IDENTIFIER_FIELDS:
            if field in good["data"]:
                assert str(good["data"][field]) not in record["reason"]
    assert "'liander-2026'" in rejections[1]["reason"]  # forged: names the key id
    assert "'pwn'" in rejections[2]["reason"]
    assert "expired on 2026-11-01" in rejections[4]["reason"]

    decided = [r for r in routed.audit if r["action"] != "reject"]
    assert {r["signal_id"] for r in decided} == {good["id"]}
    assert routed.delivered >= 1 and len(routed.outbox) == routed.delivered
    assert {e.exchange_id for e in routed.outbox} <= {r["record_id"] for r in decided}


def test_demo_traffic_is_signed_and_verifies_on_the_shipped_covenants():
    source = policy_source()
    values = [orjson.dumps(s) for s in traffic(200)]
    for value in values:
        sent = orjson.loads(value)
        assert sent["signature"].startswith(f"ed25519:{demo_key_id(sent['source'])}:")
    records = [
        Consumed(signals_topic(orjson.loads(v)["source"]), 0, i, v) for i, v in enumerate(values)
    ]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)
    assert routed.dead_letters == []
    assert routed.delivered > 0


def test_outside_demo_mode_the_demo_traffic_is_refused_for_its_test_keys():
    """A router not in demo mode (every deployment) delivers nothing signed with a TEST key."""
    source = policy_source(demo=False)
    values = [orjson.dumps(s) for s in traffic(60)]
    records = [
        Consumed(signals_topic(orjson.loads(v)["source"]), 0, i, v) for i, v in enumerate(values)
    ]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)
    assert routed.delivered == 0 and routed.outbox == []
    letters = [orjson.loads(d.value) for d in routed.dead_letters]
    assert len(letters) == len(values)
    assert {d["code"] for d in letters} == {"unknown_key"}


def test_a_router_not_in_demo_mode_will_not_start_on_a_covenant_registering_a_test_key(
    tmp_path: Path,
):
    folder = tmp_path / "covenants"
    shutil.copytree(ROOT / "covenants", folder)
    path = folder / "drugslocaties-nh" / "2025.1.yaml"
    text = add_key_text(
        path.read_text(encoding="utf-8"), "liander", "liander-2026", demo_public_key("liander")
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SystemExit, match="TEST key"):
        policy_source([folder], demo=False)
    assert policy_source([folder], demo=True).current.policy is not None  # a warning there
