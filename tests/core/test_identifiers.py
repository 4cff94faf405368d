"""Identifier normalisation: canonical forms, check digits, rejections without the value."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from services.core.errors import IdentifierError
from services.core.identifiers import (
    BAG_OBJECT_TYPES,
    IDENTIFIER_KINDS,
    ean_check_digit,
    municipality_code,
    normalise,
    normaliser,
    postcode4,
)

FAST = settings(max_examples=100, deadline=None)

EAN = "871685900000000011"


def reference_gs1_check_digit(first17: str) -> str:
    """Independent GS1 rule: from the right, weights 3, 1, 3, ... then round up to 10."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(first17)))
    return str((10 - total % 10) % 10)


def nl_iban(bank: str, account: str) -> str:
    """Independent ISO 13616 construction of a Dutch IBAN (check digits = 98 - n mod 97)."""
    numeric = "".join(str(int(c, 36)) for c in f"{bank}{account}NL00")
    return f"NL{98 - int(numeric) % 97:02d}{bank}{account}"


def error_of(kind: str, value: object) -> IdentifierError | None:
    """The error normalising ``value`` raises, or None if it is valid."""
    try:
        normalise(kind, value)
    except IdentifierError as exc:
        return exc
    return None


def rejects(kind: str, value: object, fragment: str) -> IdentifierError:
    with pytest.raises(IdentifierError) as caught:
        normalise(kind, value)
    assert caught.value.kind == kind
    assert fragment in caught.value.reason
    if isinstance(value, str) and len(value.strip()) >= 4:
        assert value.strip() not in str(caught.value)
    return caught.value


# --- kinds and dispatch ----------------------------------------------------------------------


def test_identifier_kinds():
    assert (
        frozenset({"ean", "address", "postcode", "bag", "kvk", "plate", "iban", "name"})
        == IDENTIFIER_KINDS
    )


@pytest.mark.parametrize("kind", sorted(IDENTIFIER_KINDS))
def test_every_kind_has_a_normaliser(kind):
    assert callable(normaliser(kind))


def test_unknown_kind():
    with pytest.raises(IdentifierError, match="unknown identifier kind"):
        normalise("bsn", "123456782")
    with pytest.raises(IdentifierError, match="unknown identifier kind"):
        normaliser("bsn")


@pytest.mark.parametrize("kind", sorted(IDENTIFIER_KINDS))
@pytest.mark.parametrize("value", [None, 12345678, 871685900000000011, 1.5, b"1811AB", True])
def test_non_strings_are_rejected(kind, value):
    with pytest.raises(IdentifierError, match="must be a string"):
        normalise(kind, value)


# --- EAN -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [EAN, "8716 8590 0000 0000 11", "871685.900000.000011", "871685-900000-000011", f" {EAN}\t"],
)
def test_ean_separators(value):
    assert normalise("ean", value) == EAN


def test_ean_check_digit_known_value():
    assert ean_check_digit(EAN[:17]) == "1"
    assert ean_check_digit("87123456789012345") == reference_gs1_check_digit("87123456789012345")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("871685900000000012", "check digit does not match"),
        ("87168590000000001", "must be 18 digits"),
        ("8716859000000000111", "must be 18 digits"),
        ("87168590000000001A", "only digits"),
        ("".join(chr(0xFF10 + int(d)) for d in EAN), "only digits"),  # full-width digits
        ("", "must be 18 digits"),
    ],
)
def test_ean_rejections(value, fragment):
    rejects("ean", value, fragment)


def test_ean_check_digit_input_is_checked():
    with pytest.raises(IdentifierError):
        ean_check_digit("1234")
    with pytest.raises(IdentifierError):
        ean_check_digit("1234567890123456X")


@FAST
@given(st.text(alphabet=string.digits, min_size=17, max_size=17))
def test_ean_check_digit_matches_reference(first17):
    assert ean_check_digit(first17) == reference_gs1_check_digit(first17)
    assert normalise("ean", first17 + ean_check_digit(first17)) == first17 + ean_check_digit(
        first17
    )


@FAST
@given(
    st.text(alphabet=string.digits, min_size=17, max_size=17),
    st.integers(min_value=0, max_value=17),
    st.integers(min_value=1, max_value=9),
)
def test_ean_any_single_digit_change_is_caught(first17, position, delta):
    valid = first17 + ean_check_digit(first17)
    changed = valid[:position] + str((int(valid[position]) + delta) % 10) + valid[position + 1 :]
    rejects("ean", changed, "check digit does not match")


@FAST
@given(
    st.text(alphabet=string.digits, min_size=17, max_size=17),
    st.lists(st.tuples(st.integers(0, 18), st.sampled_from([" ", ".", "-", "  "])), max_size=6),
)
def test_ean_formatting_variants_agree(first17, inserts):
    valid = first17 + ean_check_digit(first17)
    formatted = valid
    for position, separator in sorted(inserts, reverse=True):
        formatted = formatted[:position] + separator + formatted[position:]
    assert normalise("ean", formatted) == valid


# --- postcode --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1811AB", "1811 AB", "1811ab", " 1811  aB ", "1811\tAB"])
def test_postcode_variants(value):
    assert normalise("postcode", value) == "1811AB"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0811AB", "not starting with 0"),
        ("1811A", "followed by 2 letters"),
        ("181AB", "4 digits"),
        ("1811 SS", "SA, SD and SS"),
        ("1811sa", "SA, SD and SS"),
        ("1811 SD", "SA, SD and SS"),
        ("1811ÄB", "ASCII"),
        ("1811 ﬀ", "ASCII"),  # the ligature upper-cases to "FF": must not sneak through
    ],
)
def test_postcode_rejections(value, fragment):
    rejects("postcode", value, fragment)


postcodes = st.builds(
    lambda first, rest, letters: f"{first}{rest}{letters}",
    st.sampled_from("123456789"),
    st.text(alphabet=string.digits, min_size=3, max_size=3),
    st.text(alphabet=string.ascii_uppercase, min_size=2, max_size=2).filter(
        lambda s: s not in {"SA", "SD", "SS"}
    ),
)


@FAST
@given(postcodes, st.sampled_from(["", " ", "  "]), st.booleans())
def test_postcode_spacing_and_case_agree(postcode, space, lower):
    text = f"{postcode[:4]}{space}{postcode[4:]}"
    assert normalise("postcode", text.lower() if lower else text) == postcode


# --- address ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "1811 ab 12-a",
        "1811AB 12A",
        "1811ab12 a",
        "1811 AB 12 - A",
        "1811AB12A",
        "  1811  AB   12 a ",
        "1811AB 012A",
        "1811AB 12/A",
        {"postcode": "1811 ab", "house_number": 12, "addition": "a"},
        {"postcode": "1811AB", "house_number": "12", "addition": "-A"},
    ],
)
def test_address_variants_agree(value):
    assert normalise("address", value) == "1811AB 12A"


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("1811AB 12", "1811AB 12"),
        ({"postcode": "1811AB", "house_number": 12}, "1811AB 12"),
        ("1811AB 12 bis", "1811AB 12BIS"),
        ("1811AB 12-1", "1811AB 12-1"),
        ("1811AB 12 1", "1811AB 12-1"),
        ("1811AB 12 A 2", "1811AB 12A2"),
        ("1811AB 12-hs", "1811AB 12HS"),
        ("1811AB 99999", "1811AB 99999"),
        ("1811AB 1234", "1811AB 1234"),
    ],
)
def test_address_canonical_forms(value, canonical):
    assert normalise("address", value) == canonical
    assert normalise("address", canonical) == canonical


def test_address_digit_addition_does_not_collide_with_longer_number():
    assert normalise("address", "1811AB 12-34") != normalise("address", "1811AB 1234")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1811AB", "followed by a house number"),
        ("Dorpsstraat 12, Alkmaar", "followed by a house number"),
        ("1811AB 0", "house number must be 1 to 99999"),
        ("1811AB 100000", "house number must be 1 to 99999"),
        ("1811AB 12 ABCDE", "1 to 4 letters or digits"),
        ("1811AB 12.A", "1 to 4 letters or digits"),
        ("1811SS 12", "SA, SD and SS"),
        ("0811AB 12", "followed by a house number"),
        ("1811AB 12 ß", "ASCII"),
        ({"postcode": "1811AB", "house_number": "twelve"}, "whole number"),
        ({"postcode": "1811AB", "house_number": 12, "street": "x"}, "only have the keys"),
        ({"postcode": "18AB", "house_number": 12}, "postcode"),
        ({"postcode": "1811AB", "house_number": True}, "whole number"),
    ],
)
def test_address_rejections(value, fragment):
    rejects("address", value, fragment)


address_parts = st.tuples(
    postcodes,
    st.integers(min_value=1, max_value=99999),
    st.one_of(
        st.just(""),
        st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=1),
        st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=4),
    ),
)


@FAST
@given(address_parts, st.sampled_from(["", " ", "  "]), st.sampled_from([" ", "", "-", " - ", "/"]))
def test_address_writing_variants_agree(parts, pc_space, separator):
    postcode, number, addition = parts
    glue = "-" if addition[:1].isdigit() else ""
    canonical = f"{postcode} {number}{glue}{addition}"
    # A digit-first addition needs a separator, or it would merge into the house number.
    if addition and addition[0].isdigit() and separator == "":
        separator = " "
    text = (
        f"{postcode[:4]}{pc_space}{postcode[4:]} {number}{separator if addition else ''}{addition}"
    )
    assert normalise("address", text) == canonical
    assert normalise("address", text.lower()) == canonical
    assert normalise("address", canonical) == canonical
    assert canonical.startswith(f"{postcode} {number}")
    assert postcode4(canonical) == postcode[:4]


# --- BAG, KvK, plate -------------------------------------------------------------------------


@pytest.mark.parametrize("type_code", sorted(BAG_OBJECT_TYPES))
def test_bag_object_types_accepted(type_code):
    value = f"0363{type_code}0000123456"
    assert normalise("bag", value) == value
    assert normalise("bag", f"0363 {type_code} 0000 123456") == value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0363990000123456", "object type code"),
        ("036301000012345", "must be 16 digits"),
        ("0363", "must be 16 digits"),  # a woonplaats id is not a location identifier
        ("0363-01-0000123456", "only digits"),
    ],
)
def test_bag_rejections(value, fragment):
    rejects("bag", value, fragment)


@pytest.mark.parametrize(
    "value", ["12345678", "1234 5678", "12.34.56.78", " 12345678 ", "1234\t5678", "1234\u00a05678"]
)
def test_kvk_variants(value):
    assert normalise("kvk", value) == "12345678"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1234567", "must be 8 digits"),
        ("123456789", "must be 8 digits"),
        ("1234-5678", "only digits"),
    ],
)
def test_kvk_rejections(value, fragment):
    rejects("kvk", value, fragment)


@pytest.mark.parametrize("value", ["12-AB-34", "12AB34", "12 ab 34", "12-ab-34", "12\tAB\t34"])
def test_plate_variants(value):
    assert normalise("plate", value) == "12AB34"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ABCDEF", "at least one letter and one digit"),
        ("123456", "at least one letter and one digit"),
        ("12-AB-3", "6 letters and digits"),
        ("12-AB-345", "6 letters and digits"),
        ("12_AB_34", "6 letters and digits"),
        ("12ßA34", "6 letters and digits"),  # "ß".upper() == "SS" must not make it valid
    ],
)
def test_plate_rejections(value, fragment):
    rejects("plate", value, fragment)


# --- IBAN ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("NL91ABNA0417164300", "NL91ABNA0417164300"),
        ("nl91 abna 0417 1643 00", "NL91ABNA0417164300"),
        ("GB82 WEST 1234 5698 7654 32", "GB82WEST12345698765432"),
        ("DE89370400440532013000", "DE89370400440532013000"),
        ("BE68539007547034", "BE68539007547034"),
    ],
)
def test_iban_valid(value, canonical):
    assert normalise("iban", value) == canonical


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("NL92ABNA0417164300", "mod-97"),
        ("NL91ABNA041716430", "18 characters"),
        ("NL91ABNA04171643000", "18 characters"),
        ("NL9112340417164300", "4-letter bank code"),
        ("91ABNA0417164300", "2-letter country code"),
        ("NL91ABNA0417164ß00", "2-letter country code"),
    ],
)
def test_iban_rejections(value, fragment):
    rejects("iban", value, fragment)


banks = st.text(alphabet=string.ascii_uppercase, min_size=4, max_size=4)
accounts = st.text(alphabet=string.digits, min_size=10, max_size=10)


@FAST
@given(banks, accounts)
def test_constructed_nl_ibans_validate_in_any_grouping(bank, account):
    iban = nl_iban(bank, account)
    assert normalise("iban", iban) == iban
    grouped = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    assert normalise("iban", grouped.lower()) == iban


@FAST
@given(
    banks, accounts, st.integers(min_value=2, max_value=17), st.integers(min_value=1, max_value=9)
)
def test_iban_single_digit_change_fails_mod_97(bank, account, position, delta):
    iban = nl_iban(bank, account)
    assume(iban[position].isdigit())
    changed = iban[:position] + str((int(iban[position]) + delta) % 10) + iban[position + 1 :]
    rejects("iban", changed, "mod-97")


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "Jan Jansen",
        "  jan   JANSEN ",
        "JAN\tJANSEN",
        "Jan\u00a0Jansen",
        "Jan Jan\u200bsen",
        "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "Jan Jansen"),  # full width
    ],
)
def test_name_variants(value):
    assert normalise("name", value) == "jan jansen"


def test_name_keeps_diacritics_and_folds_case():
    assert normalise("name", "Müller") == "müller"
    assert normalise("name", "Müller") != normalise("name", "Muller")
    assert normalise("name", "STRAßE") == normalise("name", "strasse")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12345", "at least one letter"),
        ("   ", "at least one letter"),
        ("Jan\x00Jansen", "control characters"),
        ("Jan\ud800", "unpaired surrogates"),
        ("a" * 201, "at most 200 characters"),
    ],
)
def test_name_rejections(value, fragment):
    rejects("name", value, fragment)


@FAST
@given(st.text(max_size=40))
def test_name_idempotent_on_any_text(text):
    try:
        once = normalise("name", text)
    except IdentifierError:
        return
    assert normalise("name", once) == once


@FAST
@given(st.text(alphabet=string.ascii_letters + " ", min_size=1, max_size=30))
def test_name_case_and_spacing_variants_agree(text):
    assume(any(c.isalpha() for c in text))
    spaced = "  ".join(text.split())
    assert normalise("name", spaced.upper()) == normalise("name", f" {text.lower()} ")


# --- idempotence across kinds ---------------------------------------------------------------

identifier_like = st.text(alphabet=string.ascii_letters + string.digits + " -./", max_size=30)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(IDENTIFIER_KINDS)), st.one_of(identifier_like, st.text(max_size=30)))
def test_normalise_is_idempotent(kind, text):
    error = error_of(kind, text)
    if error is None:
        once = normalise(kind, text)
        assert normalise(kind, once) == once
    elif sum(c.isdigit() for c in text) >= 6:
        assert text.strip() not in str(error)


@FAST
@given(
    st.sampled_from(["ean", "bag", "kvk", "iban", "address", "postcode", "plate"]),
    st.text(string.digits, min_size=6, max_size=30),
)
def test_reasons_never_echo_digit_strings(kind, digits):
    error = error_of(kind, digits)
    assert error is None or digits not in str(error)


# --- postcode4 and municipality codes -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "area"), [("1811AB 12A", "1811"), ("1811AB", "1811"), ("9999ZZ 1-2", "9999")]
)
def test_postcode4(value, area):
    assert postcode4(value) == area


@pytest.mark.parametrize("value", ["1811", "1811 AB", "1811ab 12", "0811AB", "1811ABC", ""])
def test_postcode4_needs_canonical_input(value):
    with pytest.raises(IdentifierError):
        postcode4(value)


@pytest.mark.parametrize("value", ["gm363", "GM0363", "GM 363", " gm0363 ", "GM363"])
def test_municipality_code(value):
    assert municipality_code(value) == "GM0363"


@pytest.mark.parametrize("value", ["0363", "GM", "GM00000", "GM0000", "GMX363", 363, None, "ǵm363"])
def test_municipality_code_rejections(value):
    with pytest.raises(IdentifierError) as caught:
        municipality_code(value)
    assert caught.value.kind == "municipality"
