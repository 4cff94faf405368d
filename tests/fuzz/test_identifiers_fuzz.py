"""Identifier normalisers: any input gives a canonical form or an IdentifierError, nothing else.

Canonical forms are fixed points (normalising twice changes nothing), a valid identifier
written with other spacing, case or separators gives the same canonical form, and no error
message repeats the value.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.core.errors import IdentifierError
from services.core.identifiers import (
    IDENTIFIER_KINDS,
    ean_check_digit,
    municipality_code,
    normalise,
    postcode4,
)
from tests.fuzz.strategies import fuzz_settings

KINDS = sorted(IDENTIFIER_KINDS)
# characters that make normalisers work: digits (also non-ASCII ones), letters, separators,
# Unicode whitespace, format characters, ligatures and letters that change under upper()
ALPHABET = st.sampled_from(
    [
        *"0123456789ABSDKLMNXZabsdz -./\t\n",
        "\u00a0",
        "\u2007",
        "\u200b",
        "\u00ad",
        "\u0661",
        "\uff11",
        "\u00df",
        "\ufb01",
        "\u0130",
    ]
)
identifier_text = st.one_of(st.text(ALPHABET, max_size=40), st.text(max_size=40))
non_strings = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.lists(st.integers(), max_size=3)
)
CANONICAL_SHAPE = {
    "ean": re.compile(r"[0-9]{18}"),
    "postcode": re.compile(r"[1-9][0-9]{3}[A-Z]{2}"),
    "address": re.compile(
        r"[1-9][0-9]{3}[A-Z]{2} [1-9][0-9]{0,4}([A-Z][A-Z0-9]{0,3}|-[0-9][A-Z0-9]{0,3})?"
    ),
    "bag": re.compile(r"[0-9]{16}"),
    "kvk": re.compile(r"[0-9]{8}"),
    "plate": re.compile(r"[A-Z0-9]{6}"),
    "iban": re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}"),
}


# the same shape with other characters: letters stay letters (and case), digits stay digits
_SWAP = str.maketrans(
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "1234567890bcdefghijklmnopqrstuvwxyzaBCDEFGHIJKLMNOPQRSTUVWXYZA",
)


def _assert_quiet(exc: IdentifierError, kind: str, value: object) -> None:
    assert exc.kind == kind
    assert exc.reason.strip()
    text = str(value)
    # a value long enough to be an identifier never appears in the message -- unless the
    # message does not depend on it at all (a value such as "must b" can be part of a fixed
    # message): the same shape with other characters then gets the very same message
    if len(text.strip()) >= 6 and text in str(exc):
        with pytest.raises(IdentifierError) as other:
            normalise(kind, text.translate(_SWAP))
        assert str(other.value) == str(exc), f"the message quotes the value: {exc}"


@pytest.mark.parametrize("kind", KINDS)
@fuzz_settings(250)
@given(value=identifier_text)
def test_text_gives_a_canonical_fixed_point_or_a_quiet_error(kind, value):
    try:
        canonical = normalise(kind, value)
    except IdentifierError as exc:
        _assert_quiet(exc, kind, value)
        return
    assert normalise(kind, canonical) == canonical
    shape = CANONICAL_SHAPE.get(kind)
    if shape is not None:
        assert shape.fullmatch(canonical), canonical


@pytest.mark.parametrize("kind", KINDS)
@fuzz_settings(60)
@given(value=non_strings)
def test_non_strings_are_refused_by_type(kind, value):
    with pytest.raises(IdentifierError) as caught:
        normalise(kind, value)
    assert caught.value.kind == kind


@st.composite
def written_differently(draw: st.DrawFn, canonical: str) -> str:
    """``canonical`` with random case, and spaces between characters where allowed."""
    out = []
    for ch in canonical:
        out.append(ch.lower() if draw(st.booleans()) else ch)
        if draw(st.integers(0, 4)) == 0:
            out.append(draw(st.sampled_from([" ", "  ", "\t"])))
    return "".join(out).strip() or canonical


@fuzz_settings(200)
@given(st.text("0123456789", min_size=17, max_size=17), st.data())
def test_an_ean_however_spaced_has_one_canonical_form(first17, data):
    ean = first17 + ean_check_digit(first17)
    assert normalise("ean", data.draw(written_differently(ean))) == ean


@fuzz_settings(200)
@given(
    st.integers(1000, 9999),
    st.text("ABCEFGHJKLMNPRTUVWXYZ", min_size=2, max_size=2),
    st.integers(1, 99999),
    st.sampled_from(["", "A", "BIS", "-1", "-2B"]),
    st.data(),
)
def test_an_address_however_written_has_one_canonical_form(digits, letters, number, addition, data):
    canonical = f"{digits}{letters} {number}{addition}"
    assert normalise("address", canonical) == canonical
    gap = st.sampled_from(["", " ", "  ", "\t"])
    case = data.draw(st.sampled_from([str.upper, str.lower, str.title]))
    written = (
        f"{data.draw(gap)}{digits}{data.draw(gap)}{case(letters)}{data.draw(st.sampled_from([' ', '']))}"
        f"{data.draw(st.sampled_from(['', '0', '00']))}{number}{data.draw(gap)}{case(addition)}"
    )
    assert normalise("address", written) == canonical
    assert postcode4(canonical) == str(digits)


@fuzz_settings(200)
@given(identifier_text)
def test_municipality_codes_are_canonical_or_refused(value):
    try:
        code = municipality_code(value)
    except IdentifierError as exc:
        _assert_quiet(exc, "municipality", value)
    else:
        assert re.fullmatch(r"GM[0-9]{4}", code) and municipality_code(code) == code
