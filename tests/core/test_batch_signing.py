"""Signed batches through the pure pipeline: one root signature for many signals, attacked.

All keys here are TEST KEYS derived from fixed seeds (tests/core/test_signing.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.core import signing
from services.core.batch_signing import MAX_BATCH, b64, parse_batch, sign_batch
from services.core.errors import SignalRejected
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.verified_roots import VerifiedRoots
from tests.core.builders import REGISTRY, anomaly, covenant_text, policy
from tests.core.test_signing import (
    ANOMALY_RULE,
    LIANDER_NEW,
    LIANDER_OLD,
    MALLORY,
    NOW,
    PWN,
    Verifications,
    delivered,
    keys_yaml,
    rejected,
    signed_covenant,
)


def batch(count: int, key: Any = LIANDER_OLD, key_id: str = "liander-1", **kw: Any) -> list[dict]:
    envelopes = [
        anomaly(signal_id=f"liander-{n:06d}", score=0.9 + n / 1e6, **kw) for n in range(count)
    ]
    return sign_batch(envelopes, key, key_id)


def decide(envelope: dict[str, Any], p: Policy, now: datetime = NOW, **kw: Any) -> Any:
    return process(orjson.dumps(envelope), REGISTRY, p, now, **kw)


def with_batch(envelope: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """``envelope`` with parts of its batch attribute replaced."""
    index, size, root, path = envelope["batch"].split(":")
    fields = {"index": index, "size": size, "root": root, "path": path, **parts}
    return {**envelope, "batch": "{index}:{size}:{root}:{path}".format(**fields)}


# --- the honest case -------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 100])
def test_every_signal_of_a_batch_is_delivered_for_one_verification(size, monkeypatch):
    p = policy(signed_covenant())
    verifications = Verifications(monkeypatch)
    for envelope in batch(size):
        outcome = decide(envelope, p)
        delivered(outcome)
        assert outcome.partner_signature["form"] == "ed25519-merkle"
    assert verifications.count == 1
    assert p.keyring is not None and p.keyring.roots.verifications == 1


def test_a_batch_of_one_has_an_empty_path():
    [envelope] = batch(1)
    assert envelope["batch"].endswith(":") and envelope["batch"].startswith("0:1:")
    delivered(decide(envelope, policy(signed_covenant())))


def test_single_signatures_stay_valid_beside_batches(monkeypatch):
    p = policy(signed_covenant())
    verifications = Verifications(monkeypatch)
    single = signing.sign(anomaly(signal_id="liander-single"), LIANDER_OLD, "liander-1")
    outcome = decide(single, p)
    delivered(outcome)
    assert outcome.partner_signature["form"] == "ed25519" and "index" not in (
        outcome.partner_signature
    )
    for envelope in batch(4):
        delivered(decide(envelope, p))
    assert verifications.count == 2


def test_sign_batch_leaves_its_input_alone_and_replaces_old_signature_attributes():
    envelopes = [anomaly(signal_id=f"s-{n}") for n in range(3)]
    signed = sign_batch(envelopes, LIANDER_OLD, "liander-1")
    assert all("signature" not in e and "batch" not in e for e in envelopes)
    again = sign_batch(signed, LIANDER_OLD, "liander-1")
    assert again == signed  # deterministic: Ed25519, and old attributes are not signed
    single = signing.sign(signed[0], LIANDER_OLD, "liander-1")
    assert "batch" not in single and single["signature"].startswith("ed25519:liander-1:")
    with pytest.raises(ValueError, match="1 to"):
        sign_batch([], LIANDER_OLD, "liander-1")
    with pytest.raises(ValueError, match="slug"):
        sign_batch(envelopes, LIANDER_OLD, "Liander 1")
    assert MAX_BATCH == 65536


# --- forged and moved proofs -------------------------------------------------------------


def test_a_root_signed_with_another_private_key_is_a_bad_batch_root():
    forged = batch(3, key=MALLORY)  # the right key id, the wrong private key
    reason = rejected(decide(forged[1], policy(signed_covenant())), "bad_batch_root")
    assert "'liander-1'" in reason and "'liander'" in reason


def test_a_forged_root_under_a_genuine_root_signature_is_refused():
    genuine = batch(4)
    # the attacker builds its own tree over changed signals and keeps the genuine signature
    changed = [dict(e, data=dict(e["data"], score=0.99)) for e in genuine]
    forged = sign_batch(changed, MALLORY, "liander-1")
    spliced = [dict(f, signature=genuine[0]["signature"]) for f in forged]
    p = policy(signed_covenant())
    for envelope in spliced:
        rejected(decide(envelope, p), "bad_batch_root")


def test_a_path_from_another_batch_is_refused():
    first, second = batch(4), batch(4, municipality="GM0363")
    moved = dict(first[2], batch=second[2]["batch"], signature=second[2]["signature"])
    rejected(decide(moved, policy(signed_covenant())), "bad_inclusion_path")


def test_reordered_leaves_are_refused():
    signed = batch(4)
    swapped = [
        dict(signed[1], batch=signed[2]["batch"]),
        dict(signed[2], batch=signed[1]["batch"]),
    ]
    p = policy(signed_covenant())
    for envelope in swapped:
        rejected(decide(envelope, p), "bad_inclusion_path")


@pytest.mark.parametrize(("index", "to"), [(0, "1"), (3, "2"), (4, "0"), (2, "4")])
def test_a_leaf_moved_to_another_index_is_refused(index, to):
    signed = batch(5)
    moved = with_batch(signed[index], index=to)
    rejected(decide(moved, policy(signed_covenant())), "bad_inclusion_path")


def test_a_changed_size_is_caught_by_the_root_signature():
    # leaf 0 of 5 has a path of the same shape as in a batch of 6 (tests/core/test_merkle.py):
    # the path still leads to the root, but the root signature signs the size
    first = batch(5)[0]
    rejected(decide(with_batch(first, size="6"), policy(signed_covenant())), "bad_batch_root")


def test_a_truncated_or_extended_path_is_refused():
    envelope = batch(7)[2]
    hashes = parse_batch(envelope["batch"]).path
    assert len(hashes) == 3
    raw = b"".join(hashes)
    p = policy(signed_covenant())
    for changed in (raw[32:], raw[:-32], raw + raw[:32], b""):
        rejected(decide(with_batch(envelope, path=b64(changed)), p), "bad_inclusion_path")


def test_a_changed_signal_is_refused():
    signed = batch(3)
    tampered = dict(signed[0], data=dict(signed[0]["data"], score=0.95))
    p = policy(signed_covenant())
    rejected(decide(tampered, p), "bad_inclusion_path")
    rejected(decide(dict(signed[1], time="2026-11-02T10:00:00Z"), p), "bad_inclusion_path")


# --- keys: validity, other partners, ended covenants ------------------------------------


def test_a_valid_path_under_an_expired_key_is_refused_even_with_the_root_remembered():
    cov = signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, None, "2026-11-22")))
    p = policy(cov)
    signed = batch(3)
    delivered(decide(signed[0], p))  # the last valid day: the root is verified and remembered
    next_day = datetime(2026, 11, 23, 12, tzinfo=UTC)
    reason = rejected(decide(signed[1], p, next_day), "key_expired")
    assert "2026-11-22" in reason
    assert p.keyring is not None and p.keyring.roots.verifications == 1


def test_a_key_before_its_window_is_refused():
    cov = signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, "2026-11-23", None)))
    rejected(decide(batch(2)[0], policy(cov)), "key_not_yet_valid")


def test_a_root_signed_with_another_partners_key_is_a_foreign_key(monkeypatch):
    p = policy(signed_covenant())
    verifications = Verifications(monkeypatch)
    signed = batch(3, key=PWN, key_id="pwn-1")  # liander's signals, pwn's key
    reason = rejected(decide(signed[0], p), "foreign_key")
    assert "'pwn'" in reason and "'liander'" in reason
    rejected(decide(signed[1], p), "foreign_key")
    assert verifications.count == 1


def test_a_root_verified_for_one_partner_says_nothing_for_another():
    # pwn and liander keys differ; a root remembered under liander's key is no answer for pwn
    rotation = keys_yaml(("liander-1", LIANDER_OLD, None, None))
    p = policy(signed_covenant(liander=rotation, pwn=keys_yaml(("pwn-1", PWN, None, None))))
    signed = batch(2)
    delivered(decide(signed[0], p))
    claimed = dict(signed[1], signature=signed[1]["signature"].replace(":liander-1:", ":pwn-1:"))
    rejected(decide(claimed, p), "unknown_key")  # pwn's key cannot verify liander's root


def test_a_key_whose_covenant_ended_is_named():
    cov = signed_covenant(valid="{from: 2025-01-01, until: 2026-06-30}")
    other = covenant_text(
        ANOMALY_RULE, version='"2"', valid="{from: 2026-07-01, until: 2027-12-31}"
    )
    reason = rejected(decide(batch(2)[0], policy(cov, other)), "covenant_ended")
    assert "test-covenant@1, which expired on 2026-06-30" in reason
    forged = batch(2, key=MALLORY)[0]
    rejected(decide(forged, policy(cov, other)), "bad_batch_root")


def test_an_unknown_key_costs_no_verification(monkeypatch):
    p = policy(signed_covenant())
    verifications = Verifications(monkeypatch)
    rejected(decide(batch(2, key=MALLORY, key_id="mallory-1")[0], p), "unknown_key")
    assert verifications.count == 0


def test_rotation_applies_to_batches_as_to_single_signatures():
    cov = signed_covenant(
        liander=keys_yaml(
            ("liander-2025", LIANDER_OLD, None, "2026-12-31"),
            ("liander-2026", LIANDER_NEW, "2026-12-01", None),
        )
    )
    p = policy(cov)
    rejected(decide(batch(2, LIANDER_NEW, "liander-2026")[0], p), "key_not_yet_valid")
    delivered(decide(batch(2, LIANDER_OLD, "liander-2025")[0], p))


# --- malformed attributes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"batch": None},  # a batch signature without the batch attribute
        {"signature": None},  # a batch attribute without a signature
        {"batch": "1:1:AAAA:"},  # short root
        {"batch": "01:5:" + "A" * 43 + ":"},  # leading zero
        {"batch": "5:5:" + "A" * 43 + ":"},  # index not below the size
        {"batch": "0:0:" + "A" * 43 + ":"},
        {"batch": "0:65537:" + "A" * 43 + ":" + "A" * 683},  # larger than a batch may be
        {"batch": "0:3:" + "A" * 43 + ":" + "A" * 22},  # not whole hashes
        {"batch": "0:3:" + "A" * 42 + "B:"},  # not the one base64url spelling of the root
        {"batch": "0:3:" + "A" * 43},  # no path part
        {"batch": "0:3:" + "A" * 43 + ":" + "A" * 43 + "." + "A" * 43},
    ],
)
def test_malformed_batch_attributes_are_refused(change):
    envelope = {**batch(5)[0], **change}
    envelope = {k: v for k, v in envelope.items() if v is not None}
    rejected(decide(envelope, policy(signed_covenant())), "malformed_signature")


def test_a_single_signature_with_a_batch_attribute_is_refused():
    single = signing.sign(anomaly(), LIANDER_OLD, "liander-1")
    with_proof = dict(single, batch=batch(2)[0]["batch"])
    reason = rejected(decide(with_proof, policy(signed_covenant())), "malformed_signature")
    assert "single signature" in reason


def test_a_root_signature_in_a_non_canonical_spelling_is_refused():
    envelope = batch(2)[0]
    text = envelope["signature"]
    last = text[-1]
    # 86 characters carry 512 bits and 4 unused ones: flip one unused bit of the last character
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    other = alphabet[alphabet.index(last) ^ 1]
    changed = dict(envelope, signature=text[:-1] + other)
    rejected(decide(changed, policy(signed_covenant())), "malformed_signature")


# --- the remembered roots --------------------------------------------------------------


def test_an_unverified_root_is_never_let_through(monkeypatch):
    p = policy(signed_covenant())
    verifications = Verifications(monkeypatch)
    genuine = batch(3)
    forged = batch(3, key=MALLORY)  # the same root (same signals), a forged signature
    assert forged[0]["batch"] == genuine[0]["batch"]
    for envelope in forged:
        rejected(decide(envelope, p), "bad_batch_root")
    assert verifications.count == 1  # the same forged question is answered from memory
    for envelope in genuine:  # the genuine signature over the same root is its own question
        delivered(decide(envelope, p))
    assert verifications.count == 2
    for envelope in forged:  # and remembering it lets no forged signature through
        rejected(decide(envelope, p), "bad_batch_root")
    assert verifications.count == 2


def test_a_flood_of_distinct_forged_roots_is_bounded_and_keeps_verified_roots():
    p = policy(signed_covenant())
    assert p.keyring is not None
    p.keyring.roots = roots = VerifiedRoots(good=8, bad=16)
    genuine = batch(3)
    delivered(decide(genuine[0], p))
    for n in range(200):  # each a batch of one: a distinct root every time
        [forged] = sign_batch([anomaly(signal_id=f"forged-{n}")], MALLORY, "liander-1")
        rejected(decide(forged, p), "bad_batch_root")
    assert roots.verifications == 201  # one each, as forged single signatures would cost
    assert roots.remembered(good=False) == 16 and roots.remembered(good=True) == 1
    delivered(decide(genuine[1], p))  # the verified root was not pushed out
    assert roots.verifications == 201


def test_the_table_of_verified_roots_is_bounded():
    roots = VerifiedRoots(good=2, bad=1)
    for n in range(5):
        assert roots.check(b"k", bytes([n]), b"s", lambda: True)
    assert roots.remembered(good=True) == 2
    assert roots.check(b"k", bytes([4]), b"s", lambda: pytest.fail("remembered"))
    assert roots.check(b"k", bytes([0]), b"s", lambda: False) is False  # pushed out: asked again
    with pytest.raises(ValueError, match="room"):
        VerifiedRoots(good=0)


def test_a_verify_that_raises_remembers_nothing():
    roots = VerifiedRoots()

    def broken() -> bool:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        roots.check(b"k", b"m", b"s", broken)
    assert roots.remembered(good=True) == roots.remembered(good=False) == 0
    assert roots.check(b"k", b"m", b"s", lambda: False) is False


def test_reasons_name_no_content_and_the_verifier_raises_signal_rejected():
    keyring = policy(signed_covenant()).keyring
    assert keyring is not None
    forged = batch(2, key=MALLORY)[0]
    with pytest.raises(SignalRejected) as info:
        signing.verify_envelope(forged, keyring, NOW.date(), signal_id="s")
    assert info.value.code == "bad_batch_root"
    assert forged["batch"].split(":")[2] not in info.value.message  # no root, path or key
