"""Properties of signed batches on generated batches (bounded, derandomised): every signal of a
batch verifies, and no single changed byte of a signal as sent is accepted as anything else."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.batch_signing import sign_batch
from services.core.envelope import decode
from services.core.errors import SignalRejected
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.signature_proof import check
from services.core.signing import verify_envelope
from tests.core.builders import REGISTRY, anomaly, policy
from tests.core.test_signing import LIANDER_OLD, NOW, signed_covenant
from tests.fuzz.strategies import fuzz_settings


@cache
def signed_policy() -> Policy:
    return policy(signed_covenant())


signals = st.lists(
    st.tuples(
        st.floats(min_value=0, max_value=1, allow_nan=False),
        st.sampled_from(["GM0361", "GM0363", "GM0479"]),
        st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20),
    ),
    min_size=1,
    max_size=40,
    unique_by=lambda t: t[2],
)


def envelopes(drawn: list[tuple[float, str, str]]) -> list[dict[str, Any]]:
    return [
        anomaly(signal_id=f"liander-{suffix}", score=score, municipality=code)
        for score, code, suffix in drawn
    ]


@fuzz_settings(60)
@given(signals)
def test_every_signal_of_a_random_batch_verifies(drawn: list[tuple[float, str, str]]) -> None:
    p = signed_policy()
    for envelope in sign_batch(envelopes(drawn), LIANDER_OLD, "liander-1"):
        outcome = process(orjson.dumps(envelope), REGISTRY, p, NOW)
        assert outcome.rejection is None, outcome.rejection
        assert outcome.partner_signature is not None
        assert outcome.partner_signature["size"] == len(drawn)


@fuzz_settings(300)
@given(signals, st.data())
def test_no_single_changed_byte_is_accepted_as_another_signal(
    drawn: list[tuple[float, str, str]], data: st.DataObject
) -> None:
    signed = sign_batch(envelopes(drawn), LIANDER_OLD, "liander-1")
    target = signed[data.draw(st.integers(0, len(signed) - 1))]
    raw = bytearray(orjson.dumps(target))
    spot = data.draw(st.integers(0, len(raw) - 1))
    raw[spot] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[spot]))
    outcome = process(bytes(raw), REGISTRY, signed_policy(), NOW)
    if outcome.rejection is None:
        # accepted only when the change altered no value: another spelling of the same number
        # (1e-05 and 1E-05); the envelope read and everything signed or proven are the same
        assert decode(bytes(raw)) == target, bytes(raw)
    else:
        assert outcome.rejection.code != "bad_signature"  # batch failures have their own codes


base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
batch_texts = st.one_of(
    st.text(alphabet=base64url + ":.0123456789", max_size=900),
    st.builds(
        lambda i, n, root, path: f"{i}:{n}:{root}:{path}",
        st.integers(-2, 70_000),
        st.integers(-2, 70_000),
        st.text(alphabet=base64url, min_size=42, max_size=44),
        st.text(alphabet=base64url, max_size=700),
    ),
)
CODES = {"malformed_signature", "bad_inclusion_path", "bad_batch_root", "unknown_key"}
"""A made-up root cannot verify under any key, so foreign_key never comes (it needs one)."""


@fuzz_settings(300)
@given(batch_texts, st.text(alphabet=base64url, min_size=86, max_size=86), st.data())
def test_any_batch_attribute_is_refused_with_a_code_never_an_error(
    batch: str, signature: str, data: st.DataObject
) -> None:
    keyring = signed_policy().keyring
    assert keyring is not None
    key_id = data.draw(st.sampled_from(["liander-1", "pwn-1", "nobody-1"]))
    envelope = {**anomaly(), "signature": f"ed25519-merkle:{key_id}:{signature}", "batch": batch}
    with pytest.raises(SignalRejected) as refused:  # a made-up proof is never accepted
        verify_envelope(envelope, keyring, NOW.date(), signal_id="s")
    assert refused.value.code in CODES, refused.value.code


@fuzz_settings(300)
@given(
    st.dictionaries(
        st.sampled_from(["form", "key_id", "signature", "leaf", "index", "size", "root", "path"]),
        st.one_of(
            st.none(), st.integers(-5, 70_000), st.text(alphabet=base64url + ":-", max_size=90)
        ),
    )
)
def test_any_recorded_proof_is_answered_never_an_error(proof: dict[str, Any]) -> None:
    assert check(proof, LIANDER_OLD.public_key()).ok is False
