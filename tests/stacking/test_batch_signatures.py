"""The stacking reader checks batch signatures with the router's own check: a signed batch is
used, a changed signal or a forged root is skipped with its code."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.core.batch_signing import sign_batch
from services.demo.generator import generate
from services.demo.keys import DemoSigner, demo_key_id, demo_private_key
from tests.core.test_signing import MALLORY
from tests.stacking.helpers import NOW, make_hub, records

TRAFFIC = generate(300, seed=5, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)


def stackable(count: int) -> list[dict[str, Any]]:
    """``count`` signals of one partner that the stacking rules use (as signed singly by the
    demo generator), without their signatures."""
    probe = make_hub()
    used = [e for e in TRAFFIC.signals if probe.step().run(records([e]), NOW).used == 1]
    source = used[0]["source"]
    mine = [e for e in used if e["source"] == source][:count]
    assert len(mine) == count
    return [{k: v for k, v in e.items() if k != "signature"} for e in mine]


def test_a_batch_signed_by_its_partner_is_used_and_attacks_are_skipped_with_their_codes():
    plain = stackable(4)
    hub = make_hub()
    source = plain[0]["source"]
    signed = DemoSigner().sign_batch(plain)
    assert {e["signature"] for e in signed} == {signed[0]["signature"]}
    step = hub.step()
    assert step.run(records(signed), NOW).used == 4
    keyring = hub.policy.keyring
    assert keyring is not None and keyring.roots.remembered(good=True) >= 1

    tampered = dict(signed[0], data=dict(signed[0]["data"], municipality="GM0363"))
    forged = sign_batch(plain[1:3], MALLORY, demo_key_id(source))
    moved = dict(signed[3], batch="0" + signed[3]["batch"][1:])
    stacked = hub.step().run(records([tampered, *forged, moved]), NOW)
    assert stacked.used == 0
    assert stacked.skipped == {"bad_inclusion_path": 2, "bad_batch_root": 2}
    assert sign_batch(plain, demo_private_key(source), demo_key_id(source)) == signed
