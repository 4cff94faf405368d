"""Number literals mean one number: a literal must be the double it reads as (``number_inexact``).

The attack: ``9007199254740993.0`` and ``9007199254740993e0`` read as the double
``9007199254740992``, so they share a signature with ``9007199254740992.0`` while a decimal
reader (BigDecimal, ``json`` with ``parse_float=Decimal``) sees another number. Every literal
a double printer writes must still be read as before.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_DOWN, ROUND_HALF_UP, Context, Decimal
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.config import ROOT
from services.core import strict_json
from services.core.errors import SignalRejected


def code_of(raw: bytes) -> str | None:
    try:
        strict_json.loads(raw)
    except SignalRejected as exc:
        return exc.code
    return None


@pytest.mark.parametrize(
    "literal",
    [
        "9007199254740993.0",
        "9007199254740993e0",
        "9.007199254740993e15",
        "-9007199254740993.0",
        "4503599627370497.5",  # half way between two doubles: a decimal reader sees .5
        "18014398509481985.0",
        "0.30000000000000001",  # the double 0.3 is 0.299999999999999988…: 17 digits say …99
        "1e-400",  # no double: it reads as 0
        "1.0000000000000000000000001",
    ],
)
def test_a_literal_no_double_holds_is_refused_on_every_path(literal: str):
    for raw in (f'{{"a":{literal}}}', f"[1,{literal}]", literal, f'{{"a":[{{"b":{literal}}}]}}'):
        assert code_of(raw.encode()) == "number_inexact", raw
    single, items = strict_json.items(f'[{{"a":1}},{{"a":{literal}}}]'.encode())
    assert not single and items[0] == {"a": 1}
    assert isinstance(items[1], SignalRejected) and items[1].code == "number_inexact"


def test_the_reason_repeats_no_digits():
    with pytest.raises(SignalRejected) as info:
        strict_json.loads(b'{"a":9007199254740993.0}')
    assert "9007" not in info.value.message and "Fix:" in info.value.message


@pytest.mark.parametrize(
    "literal",
    [
        "0.1",
        "0.10000000000000001",  # %.17g of 0.1
        "0.30000000000000004",
        "9007199254740992.0",
        "9.3e18",
        "1e300",
        "1E+2",
        "1.7976931348623157e308",
        "4.9e-324",
        "2.2250738585072014e-308",
        "4611686018427388000.0",  # RFC 8785 writes this double so
        "1.50",
        "-0.0",
        "0e10",
        "52.3702157",
        "4.8951679",
    ],
)
def test_what_double_printers_write_is_read_as_before(literal: str):
    assert strict_json.loads(f'{{"a":{literal}}}'.encode()) == {"a": float(literal)}


def test_every_number_in_the_examples_and_demo_traffic_is_faithful():
    """What partners send (the example files) passes the exact reader too, not only the fast one."""
    read = 0
    for path in sorted(Path(ROOT / "examples").glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # the examples' deliberately broken lines
            strict_json.exact(line)
            read += 1
    assert read >= 3000


def _significant(literal: str) -> int:
    digits = Decimal(literal).as_tuple().digits
    return max(1, len("".join(map(str, digits)).rstrip("0")))


def oracle(literal: str) -> bool:
    """Independently: the literal equals its double rounded (half up or half down) to the
    literal's significant digits."""
    exact = Decimal(float(literal))  # the double's exact binary value
    number = Decimal(literal)
    if number.is_zero():
        return True
    digits = _significant(literal)
    return any(
        Context(prec=digits, rounding=mode).plus(exact) == number
        for mode in (ROUND_HALF_UP, ROUND_HALF_DOWN)
    )


literals = st.builds(
    lambda sign, digits, point, exponent: (
        sign
        + (digits[:point] or "0")
        + ("." + digits[point:] if digits[point:] else "")
        + (f"e{exponent}" if exponent is not None else "")
    ),
    st.sampled_from(["", "-"]),
    st.text("0123456789", min_size=1, max_size=24).map(lambda d: d.lstrip("0") or "0"),
    st.integers(0, 24),
    st.none() | st.integers(-340, 300),
)


@settings(max_examples=500, deadline=None)
@given(literals)
def test_a_literal_is_read_exactly_when_it_is_the_double_it_names(literal: str):
    if not math.isfinite(float(literal)):
        return
    if not any(c in literal for c in ".eE"):
        return  # integers have their own rule (integer_out_of_range)
    for text in (f'{{"n":{literal}}}', f'{{"a": "x", "n" :\n {literal} }}', f"[0.5, {literal}]"):
        code = code_of(text.encode())  # the fast path first, as every entrance reads
        assert (code is None) == oracle(literal), (text, code)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 16))
def test_whatever_a_double_printer_writes_is_read_as_that_double(value: float, digits: int):
    for text in (repr(value), f"{value:.17g}", f"{value:.{digits}e}", orjson.dumps(value).decode()):
        if not math.isfinite(float(text)):
            continue  # rounded to fewer digits, 1.5e308 becomes 2e+308: beyond any double
        if not any(c in text for c in ".eE") and abs(int(text)) > strict_json.MAX_EXACT_INTEGER:
            continue  # an integer literal: integer_out_of_range has its own test
        assert strict_json.loads(f"[{text}]".encode())[0] == float(text)


@settings(max_examples=300, deadline=None)
@given(st.integers(2**53, 2**64).filter(lambda n: n % 10 != 0), st.sampled_from([".0", "e0"]))
def test_a_large_integral_literal_is_read_only_when_the_double_is_that_integer(n: int, suffix: str):
    assert (code_of(f"[{n}{suffix}]".encode()) is None) == (float(n) == n)
