"""Signed batches in the router's pure batch step, on the shipped covenants (Liander's demo key
expired and a successor in force, as in test_signatures.py): a signed batch is delivered for
one verification and each audit record proves its signal; every attack on a batch is
dead-lettered and audited with its own reason."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.core.batch_signing import sign_batch
from services.core.pipeline import process
from services.core.signature_proof import check
from services.demo.keys import DemoSigner, demo_key_id, demo_private_key
from services.router.batch import Consumed, route_batch
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic
from tests.router.helpers import NOW, policy_source, traffic
from tests.router.test_signatures import MALLORY, NEW_KEY, NEW_KEY_ID, rotated_covenants

GOOD = 5


def delivered_signals(source: PolicySource, count: int) -> list[dict[str, Any]]:
    """``count`` Liander signals the policy delivers (unsigned)."""
    registry, policy = source.current.registry, source.current.policy
    found: list[dict[str, Any]] = []
    for envelope in traffic(600):
        if envelope["type"] != "energy.consumption_anomaly.v1":
            continue
        plain = {k: v for k, v in envelope.items() if k != "signature"}
        [signed] = sign_batch([plain], NEW_KEY, NEW_KEY_ID)
        if any(d.delivered for d in process(orjson.dumps(signed), registry, policy, NOW).decisions):
            found.append(plain)
            if len(found) == count:
                return found
    raise AssertionError("too few delivered Liander signals in the demo traffic")


def batch_cases(source: PolicySource) -> tuple[list[bytes], dict[str, bytes]]:
    """A good batch of GOOD signals, and one signal per attack with its expected code."""
    plain = delivered_signals(source, GOOD + 1)
    good = sign_batch(plain[:GOOD], NEW_KEY, NEW_KEY_ID)
    spare = plain[GOOD]
    pair = [dict(spare, id="sig-other-1"), dict(spare, id="sig-other-2")]
    other = sign_batch(pair, NEW_KEY, NEW_KEY_ID)
    tampered = dict(
        good[1], data=dict(good[1]["data"], score=round(1 - good[1]["data"]["score"], 3))
    )
    index, size, root, path = good[2]["batch"].split(":")
    attacks = {
        "bad_batch_root": sign_batch([dict(spare, id="sig-forged")], MALLORY, NEW_KEY_ID)[0],
        "bad_inclusion_path": tampered,
        "moved": dict(good[2], batch=f"{int(index) + 1}:{size}:{root}:{path}"),
        "from_another_batch": dict(
            good[3], batch=other[1]["batch"], signature=other[1]["signature"]
        ),
        "key_expired": sign_batch(
            [dict(spare, id="sig-old")], demo_private_key("liander"), demo_key_id("liander")
        )[0],
        "foreign_key": sign_batch(
            [dict(spare, id="sig-pwn")], demo_private_key("pwn"), demo_key_id("pwn")
        )[0],
        "malformed_signature": {k: v for k, v in good[4].items() if k != "batch"},
    }
    return [orjson.dumps(g) for g in good], {k: orjson.dumps(v) for k, v in attacks.items()}


EXPECTED = {
    "bad_batch_root": "bad_batch_root",
    "bad_inclusion_path": "bad_inclusion_path",
    "moved": "bad_inclusion_path",
    "from_another_batch": "bad_inclusion_path",
    "key_expired": "key_expired",
    "foreign_key": "foreign_key",
    "malformed_signature": "malformed_signature",
}


def routed_for(source: PolicySource, values: list[bytes]) -> Any:
    records = [Consumed(signals_topic("liander"), 0, i, v) for i, v in enumerate(values)]
    return route_batch(records, source.current.registry, source.current.policy, NOW)


def test_a_signed_batch_is_delivered_for_one_verification_and_every_record_proves_it(
    tmp_path: Path,
):
    source = policy_source([rotated_covenants(tmp_path)])
    good, _ = batch_cases(source)
    keyring = source.current.policy.keyring
    assert keyring is not None
    before = keyring.roots.verifications
    routed = routed_for(source, good)
    assert routed.dead_letters == [] and routed.delivered >= GOOD
    assert keyring.roots.verifications == before + 1
    sent = {orjson.loads(v)["id"]: orjson.loads(v) for v in good}
    for record in routed.audit:
        proof = record["partner_signature"]
        assert proof["form"] == "ed25519-merkle" and proof["key_id"] == NEW_KEY_ID
        assert check(proof, NEW_KEY.public_key()).ok
        assert check(proof, NEW_KEY.public_key(), envelope=sent[record["signal_id"]]).content
        assert not check(proof, MALLORY.public_key()).ok


def test_every_attack_on_a_batch_is_dead_lettered_and_audited_with_its_reason(tmp_path: Path):
    source = policy_source([rotated_covenants(tmp_path)])
    good, attacks = batch_cases(source)
    routed = routed_for(source, [*good, *attacks.values()])
    letters = [orjson.loads(d.value) for d in routed.dead_letters]
    assert [d["code"] for d in letters] == list(EXPECTED.values())
    for letter, name in zip(letters, EXPECTED, strict=True):
        assert base64.b64decode(letter["original"]) == attacks[name]
    rejections = [r for r in routed.audit if r["action"] == "reject"]
    assert [r["reason"].split(":", 1)[0] for r in rejections] == list(EXPECTED.values())
    assert all("partner_signature" not in r for r in rejections)  # nothing was verified
    decided = {r["signal_id"] for r in routed.audit if r["action"] != "reject"}
    assert decided == {orjson.loads(v)["id"] for v in good}


@pytest.mark.parametrize("size", [1, 3, 64])
def test_batches_of_any_size_verify_in_the_router(tmp_path: Path, size: int):
    source = policy_source([rotated_covenants(tmp_path)])
    plain = delivered_signals(source, 1)[0]
    batch = sign_batch([dict(plain, id=f"sig-{n}") for n in range(size)], NEW_KEY, NEW_KEY_ID)
    routed = routed_for(source, [orjson.dumps(e) for e in batch])
    assert routed.dead_letters == []
    assert {r["partner_signature"]["size"] for r in routed.audit} == {size}


def test_outside_demo_mode_a_batch_signed_with_test_keys_is_refused_unverified():
    """TEST keys count only in demo mode, for a batch's root as for a single signature."""
    source = policy_source(demo=False)
    plain = [
        {k: v for k, v in e.items() if k != "signature"}
        for e in traffic(40)
        if e["source"] == "liander"
    ]
    values = [orjson.dumps(e) for e in DemoSigner().sign_batch(plain)]
    routed = routed_for(source, values)
    assert routed.delivered == 0 and routed.outbox == []
    assert {orjson.loads(d.value)["code"] for d in routed.dead_letters} == {"unknown_key"}
    keyring = source.current.policy.keyring
    assert keyring is not None and keyring.roots.verifications == 0
