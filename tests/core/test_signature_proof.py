"""Every signed signal stays provable to a third party from its audit record and the
partner's public key (services/core/signature_proof.py), and a changed record proves nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.core import signing
from services.core.batch_signing import b64, sign_batch
from services.core.canonical import canonical_envelope
from services.core.merkle import leaf_hash
from services.core.pipeline import process
from services.core.records import audit_record
from services.core.signature_proof import check
from tests.core.builders import ADDRESS, EAN, REGISTRY, anomaly, covenant_text, policy
from tests.core.test_signing import ANOMALY_RULE, LIANDER_OLD, NOW, PWN, signed_covenant


def records(envelope: dict[str, Any], cov: str | None = None) -> list[dict[str, Any]]:
    outcome = process(orjson.dumps(envelope), REGISTRY, policy(cov or signed_covenant()), NOW)
    assert outcome.rejection is None, outcome.rejection
    return [
        orjson.loads(
            orjson.dumps(audit_record(d, actor="t", partner_signature=outcome.partner_signature))
        )
        for d in outcome.decisions
    ]


def signed_batch(count: int = 6) -> list[dict[str, Any]]:
    return sign_batch(
        [anomaly(signal_id=f"liander-{n:06d}") for n in range(count)], LIANDER_OLD, "liander-1"
    )


def test_a_batch_record_alone_proves_the_leaf_and_with_the_envelope_the_signal():
    signed = signed_batch()
    public = LIANDER_OLD.public_key()
    for envelope in signed:
        [record] = records(envelope)
        proof = record["partner_signature"]
        assert set(proof) == {
            "form",
            "key_id",
            "signature",
            "leaf",
            "index",
            "size",
            "root",
            "path",
        }
        alone = check(proof, public)
        assert alone.ok and not alone.content, alone.message
        assert "the leaf of this record" in alone.message
        whole = check(proof, public, envelope=envelope)
        assert whole.ok and whole.content, whole.message
        other = signed[(signed.index(envelope) + 1) % len(signed)]
        assert not check(proof, public, envelope=other).ok


def test_the_record_carries_no_identifier_or_content():
    [record] = records(signed_batch()[2])
    text = orjson.dumps(record["partner_signature"]).decode()
    for value in (EAN, ADDRESS, "1811 ab 12-a", "GM0361", "0.93"):
        assert value not in text


@pytest.mark.parametrize(
    "change",
    [
        {"leaf": "A" * 43},
        {"index": 3},
        {"size": 7},
        {"root": "A" * 43},
        {"path": ""},
        {"key_id": "liander 1"},
        {"form": "rsa"},
        {"signature": "A" * 86},
        {"leaf": None},
        {"index": "x"},
    ],
)
def test_a_changed_record_proves_nothing(change):
    [record] = records(signed_batch()[2])
    proof = {**record["partner_signature"], **change}
    assert not check(proof, LIANDER_OLD.public_key()).ok


def test_another_partners_key_proves_nothing():
    [record] = records(signed_batch()[1])
    found = check(record["partner_signature"], PWN.public_key())
    assert not found.ok and "does not verify" in found.message


def test_a_single_signature_is_proven_with_the_envelope():
    envelope = signing.sign(anomaly(), LIANDER_OLD, "liander-1")
    [record] = records(envelope)
    proof = record["partner_signature"]
    assert proof["form"] == "ed25519" and set(proof) == {"form", "key_id", "signature", "leaf"}
    alone = check(proof, LIANDER_OLD.public_key())
    assert not alone.ok and "give the envelope" in alone.message
    assert check(proof, LIANDER_OLD.public_key(), envelope=envelope).ok
    changed = dict(envelope, data=dict(envelope["data"], score=0.5))
    assert not check(proof, LIANDER_OLD.public_key(), envelope=changed).ok
    # a record whose leaf was rewritten to the changed envelope: the signature still refuses it
    leaf = b64(leaf_hash(canonical_envelope(changed)))
    assert not check(dict(proof, leaf=leaf), LIANDER_OLD.public_key(), envelope=changed).ok


def test_an_unsigned_signal_has_no_proof():
    cov = covenant_text(ANOMALY_RULE, signatures="optional")
    [record] = records(anomaly(), cov)
    assert record["partner_signature"] is None
    assert not check(record["partner_signature"], LIANDER_OLD.public_key()).ok
