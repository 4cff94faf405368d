"""Properties of the canonical form and of signing, on generated JSON (bounded, derandomised)."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from services.core.signing import (
    canonical_envelope,
    canonical_json,
    es_number,
    parse_signature,
    sign,
)
from tests.fuzz.strategies import fuzz_settings

# I-JSON (RFC 7493) values: integers exact as doubles, as partners' JSON libraries carry them
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=40),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"TEST KEY properties").digest())


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def _doubles(value: Any) -> Any:
    """``value`` with every number as the double JSON makes of it (17 digits padded with 0s)."""
    if isinstance(value, dict):
        return {k: _doubles(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_doubles(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


@fuzz_settings(300)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_ecmascript_numbers_round_trip_to_the_same_double(value: float) -> None:
    text = es_number(value)
    assert float(text) == value
    assert "e" not in text or "e+" in text or "e-" in text  # an exponent always has a sign
    if value == int(value) and abs(value) < 1e21:
        assert "." not in text and "e" not in text  # integral doubles are written as integers


@fuzz_settings(200)
@given(json_values, st.integers(0, 2**32))
def test_canonical_form_ignores_member_order_and_whitespace(value: Any, seed: int) -> None:
    canonical = canonical_json(value)
    assert canonical_json(_shuffled(value, random.Random(seed))) == canonical
    reread = orjson.loads(orjson.dumps(value, option=orjson.OPT_INDENT_2))
    assert canonical_json(reread) == canonical
    assert canonical_json(orjson.loads(canonical)) == canonical  # idempotent
    assert _doubles(json.loads(canonical)) == _doubles(value)  # same values, as JSON doubles


@fuzz_settings(100)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=5))
def test_a_signature_covers_every_attribute_but_itself(data: dict[str, Any]) -> None:
    envelope = {"id": "s-1", "source": "liander", "data": data}
    signed = sign(envelope, KEY, "liander-1")
    key_id, signature = parse_signature(signed["signature"])
    assert key_id == "liander-1"
    public = KEY.public_key()
    public.verify(signature, canonical_envelope(orjson.loads(orjson.dumps(signed))))
    changed = dict(signed, data={**data, "extra": True})
    assert canonical_envelope(changed) != canonical_envelope(signed)
