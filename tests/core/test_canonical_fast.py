"""The fast way to RFC 8785 numbers (Python's repr where it is already ECMAScript's form)
against the general algorithm."""

from __future__ import annotations

import math
import random
import struct

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.canonical import _es_number_general, canonical_json, es_number


def test_es_number_fast_path_matches_the_general_algorithm_on_random_doubles() -> None:
    rng = random.Random(20261122)
    checked = 0
    for i in range(60_000):
        if i % 3 == 0:  # any bit pattern: every exponent
            value = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
            if not math.isfinite(value):
                continue
        elif i % 3 == 1:  # around the fixed-notation boundaries of both forms
            value = rng.uniform(-1, 1) * 10.0 ** rng.randint(-8, 23)
        else:  # measurements as partners send them
            value = round(rng.uniform(-1e4, 1e4), rng.randint(0, 6))
        assert es_number(value) == _es_number_general(value), repr(value)
        checked += 1
    assert checked > 50_000


def test_es_number_edges() -> None:
    for value, text in [
        (0.0, "0"),
        (-0.0, "0"),
        (5.0, "5"),
        (0.1, "0.1"),
        (0.0001, "0.0001"),
        (0.00001, "0.00001"),
        (1e-7, "1e-7"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (123.456, "123.456"),
        (-2.5, "-2.5"),
        (1000000000000000.5, "1000000000000000.5"),
    ]:
        assert es_number(value) == _es_number_general(value) == text


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=6),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=10,
    )
)
def test_canonical_json_writes_numbers_by_the_general_algorithm(value: object) -> None:
    assert canonical_json(value) == _reference(value)


def _reference(value: object) -> bytes:
    """Canonical JSON by the general number algorithm only (a plain recursive writer)."""

    def walk(item: object) -> object:
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, float):
            return orjson.Fragment(_es_number_general(item))
        if isinstance(item, int) and not isinstance(item, bool) and abs(item) > 2**53:
            return orjson.Fragment(_es_number_general(float(item)))
        return item

    return orjson.dumps(walk(value), option=orjson.OPT_SORT_KEYS)
