"""Canonical forms of the identifiers that signals carry.

Partners write the same real thing in many ways (``1811 ab 12-a`` and ``1811AB 12A``; an EAN
with or without spaces). Pseudonyms, stacking and covenant conditions only work if every way
of writing one thing yields one string, so every identifier is normalised here, once, when a
signal is validated. :func:`normalise` is idempotent: feeding a canonical value back in returns
it unchanged.

Only ``str`` input is accepted, also for the numeric kinds: BAG ids start with a municipality
code such as ``0363`` and some KvK numbers start with ``0``, so an ``int`` may already have lost
digits and guessing them back would join different things.

Errors are :class:`~services.core.errors.IdentifierError` with a reason that names the rule
broken and never repeats the value (the value is personal data).

Everything here is pure and compiled at import time; each call costs a few microseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping

from services.core.errors import IdentifierError

__all__ = [
    "BAG_OBJECT_TYPES",
    "IDENTIFIER_KINDS",
    "ean_check_digit",
    "municipality_code",
    "normalise",
    "normaliser",
    "postcode4",
]

IDENTIFIER_KINDS: frozenset[str] = frozenset(
    {"ean", "address", "postcode", "bag", "kvk", "plate", "iban", "name"}
)

BAG_OBJECT_TYPES: Mapping[str, str] = {
    "01": "verblijfsobject",
    "02": "ligplaats",
    "03": "standplaats",
    "10": "pand",
    "20": "nummeraanduiding",
    "30": "openbare ruimte",
}
"""Object type codes (digits 5-6) of the 16-digit BAG object ids accepted as ``bag``.

A woonplaats id is only 4 digits and identifies a town, not a location, so it is not a ``bag``
identifier.
"""

NAME_MAX_LENGTH = 200
HOUSE_NUMBER_MAX = 99999
ADDITION_MAX_LENGTH = 4

# Separators partners put inside identifiers; ``\s`` is any Unicode whitespace.
_EAN_SEPARATORS_RE = re.compile(r"[\s.\-]+")
_KVK_SEPARATORS_RE = re.compile(r"[\s.]+")
_PLATE_SEPARATORS_RE = re.compile(r"[\s\-]+")

_POSTCODE_RE = re.compile(r"[1-9][0-9]{3}[A-Z]{2}")
_FORBIDDEN_POSTCODE_LETTERS = frozenset({"SA", "SD", "SS"})
_FORBIDDEN_POSTCODE_REASON = "postcode letters SA, SD and SS are not used in the Netherlands"
# After whitespace is collapsed and letters upper-cased: postcode, house number, the rest.
_ADDRESS_RE = re.compile(r"([1-9][0-9]{3}) ?([A-Z]{2}) ?([0-9]+)(.*)")
_ADDITION_RE = re.compile(r"[A-Z0-9]{1,4}")
# The canonical address form itself, so canonical input (the common case) costs one match.
_CANONICAL_ADDRESS_RE = re.compile(
    r"[1-9][0-9]{3}(?!S[ADS])[A-Z]{2} [1-9][0-9]{0,4}(?:[A-Z][A-Z0-9]{0,3}|-[0-9][A-Z0-9]{0,3})?"
)
_PLATE_RE = re.compile(r"[A-Z0-9]{6}")
_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")
_NL_IBAN_RE = re.compile(r"NL[0-9]{2}[A-Z]{4}[0-9]{10}")
# Control characters (Cc) that str.split() does not treat as whitespace, and lone surrogates
# (which cannot be encoded, so could never be pseudonymised).
_NAME_FORBIDDEN_RE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ud800-\udfff]")
_ASCII_LETTER_RE = re.compile(r"[A-Za-z]")
_MUNICIPALITY_RE = re.compile(r"GM([0-9]{1,4})")
# ISO 13616 / ISO 7064 mod-97: digits stand for themselves, letters A..Z for 10..35.
_IBAN_DIGITS: Mapping[str, str] = {
    **{c: c for c in "0123456789"},
    **{c: str(i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)},
}

# IBAN lengths of the EEA countries, Switzerland and the United Kingdom (ISO 13616 registry).
# Other countries are checked on the general format and the mod-97 check only.
_IBAN_LENGTHS: Mapping[str, int] = {
    "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28,
    "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24,
}  # fmt: skip


def _require_str(kind: str, value: object) -> str:
    if not isinstance(value, str):
        raise IdentifierError(kind, f"must be a string, not {type(value).__name__}")
    return value


def _ascii_digits(kind: str, digits: str, count: int, what: str) -> str:
    """Check ``digits`` is exactly ``count`` ASCII digits; ``what`` says which separators went."""
    if digits and not (digits.isascii() and digits.isdigit()):
        raise IdentifierError(kind, f"may contain only digits{what}")
    if len(digits) != count:
        raise IdentifierError(kind, f"must be {count} digits{what} (found {len(digits)} digits)")
    return digits


def _gs1_sum(first17: bytes) -> int:
    """GS1 weighted sum of 17 ASCII digits: weight 3 on odd positions from the left, else 1.

    Summing the byte values and subtracting the ASCII offset once is much faster than
    converting digit by digit.
    """
    return 3 * sum(first17[0:17:2]) + sum(first17[1:17:2]) - 48 * (3 * 9 + 8)


def ean_check_digit(first17: str) -> str:
    """Return the GS1 mod-10 check digit of the 17 leading digits of an EAN-18 / GSRN.

    Weights alternate 3, 1, ... starting with 3 on the leftmost of the 17 digits (the digit
    next to the check digit always has weight 3).
    """
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise IdentifierError("ean", "check digit needs exactly 17 leading digits")
    return chr(48 + (-_gs1_sum(first17.encode("ascii"))) % 10)


def _ean(value: object) -> str:
    """Grid connection id (EAN-18 / GSRN): 18 digits with a valid GS1 check digit."""
    text = _require_str("ean", value)
    digits = text
    if not digits.isdigit():
        digits = text.replace(" ", "").replace(".", "").replace("-", "")
        if not digits.isdigit():  # other whitespace is rare: only then pay for the regex
            digits = _EAN_SEPARATORS_RE.sub("", text)
    _ascii_digits("ean", digits, 18, " apart from spaces, dots and dashes")
    encoded = digits.encode("ascii")
    if (_gs1_sum(encoded) + encoded[17] - 48) % 10:
        raise IdentifierError("ean", "check digit does not match")
    return digits


def _postcode(value: object) -> str:
    """Dutch postcode, canonical ``1811AB``: any spacing and case accepted."""
    text = _require_str("postcode", value)
    if not text.isascii():
        raise IdentifierError("postcode", "may contain only ASCII letters, digits and spaces")
    compact = "".join(text.split()).upper()
    if not _POSTCODE_RE.fullmatch(compact):
        raise IdentifierError(
            "postcode", "must be 4 digits (not starting with 0) followed by 2 letters"
        )
    if compact[4:] in _FORBIDDEN_POSTCODE_LETTERS:
        raise IdentifierError("postcode", _FORBIDDEN_POSTCODE_REASON)
    return compact


def _address_from_parts(postcode: str, number_digits: str, rest: str) -> str:
    """Join address parts into the canonical form (``rest`` has single spaces, upper case).

    The addition (huisletter and/or huisnummertoevoeging, BAG folds them here) is glued onto
    the number when it starts with a letter (``12A``) and joined with a dash when it starts with
    a digit (``12-1``), so ``12-34`` and ``1234`` never collide.
    """
    number = number_digits.lstrip("0")
    if not number or len(number) > 5:
        raise IdentifierError("address", f"house number must be 1 to {HOUSE_NUMBER_MAX}")
    addition = rest.replace(" ", "").replace("-", "").replace("/", "")
    if not addition:
        return f"{postcode} {number}"
    if not _ADDITION_RE.fullmatch(addition):
        raise IdentifierError(
            "address",
            f"house number addition must be 1 to {ADDITION_MAX_LENGTH} letters or digits, "
            "separated from the number only by spaces, '-' or '/'",
        )
    if addition[0].isdigit():
        return f"{postcode} {number}-{addition}"
    return f"{postcode} {number}{addition}"


def _address(value: object) -> str:
    """Postcode + house number + optional addition, canonical ``1811AB 12A`` / ``1811AB 12-1``.

    Accepted strings: the postcode with or without its space, then the house number (a space
    between them optional), then an addition of up to 4 letters/digits that may be separated by
    spaces, ``-`` or ``/`` (``1811 ab 12-a``, ``1811ab12 a``, ``1811 AB 12 - A``,
    ``1811AB 12 bis`` -> ``1811AB 12BIS``). Case and runs of whitespace do not matter; leading
    zeros of the house number are dropped. Street and town names are not accepted: postcode and
    number already identify the address.

    A mapping ``{"postcode": str, "house_number": str | int, "addition": str | None}`` is also
    accepted, for partners whose systems keep the parts apart.
    """
    if not isinstance(value, str):
        if isinstance(value, Mapping):
            return _address_mapping(value)
        raise IdentifierError("address", f"must be a string, not {type(value).__name__}")
    text = value
    if _CANONICAL_ADDRESS_RE.fullmatch(text):
        return text
    if not text.isascii():
        raise IdentifierError("address", "may contain only ASCII letters, digits and separators")
    match = _ADDRESS_RE.fullmatch(" ".join(text.split()).upper())
    if match is None:
        raise IdentifierError(
            "address", "must be a postcode followed by a house number and optional addition"
        )
    if match[2] in _FORBIDDEN_POSTCODE_LETTERS:
        raise IdentifierError("address", _FORBIDDEN_POSTCODE_REASON)
    return _address_from_parts(match[1] + match[2], match[3], match[4])


def _address_mapping(value: Mapping[object, object]) -> str:
    unknown = set(value) - {"postcode", "house_number", "addition"}
    if unknown:
        raise IdentifierError(
            "address", "mapping may only have the keys postcode, house_number and addition"
        )
    try:
        postcode = _postcode(value.get("postcode"))
    except IdentifierError as exc:
        raise IdentifierError("address", f"postcode {exc.reason}") from None
    number = value.get("house_number")
    if isinstance(number, int) and not isinstance(number, bool):
        number = str(number)
    if not isinstance(number, str) or not (number.isascii() and number.strip().isdigit()):
        raise IdentifierError("address", "house_number must be a whole number")
    addition = value.get("addition")
    if addition is None:
        addition = ""
    if not isinstance(addition, str) or not addition.isascii():
        raise IdentifierError("address", "addition must be an ASCII string or absent")
    return _address_from_parts(postcode, number.strip(), " ".join(addition.split()).upper())


def _bag(value: object) -> str:
    """BAG object id: 16 digits, municipality code + object type code + sequence number."""
    text = _require_str("bag", value)
    digits = text if text.isdigit() else "".join(text.split())
    _ascii_digits("bag", digits, 16, " apart from spaces")
    if digits[4:6] not in BAG_OBJECT_TYPES:
        raise IdentifierError(
            "bag",
            "digits 5-6 must be a BAG object type code (01, 02, 03, 10, 20 or 30)",
        )
    return digits


def _kvk(value: object) -> str:
    """Chamber of Commerce (KvK) number: 8 digits."""
    text = _require_str("kvk", value)
    digits = text
    if not digits.isdigit():
        digits = text.replace(" ", "").replace(".", "")
        if not digits.isdigit():  # other whitespace is rare: only then pay for the regex
            digits = _KVK_SEPARATORS_RE.sub("", text)
    return _ascii_digits("kvk", digits, 8, " apart from spaces and dots")


def _plate(value: object) -> str:
    """Dutch licence plate without its dashes: 6 letters/digits, at least one of each."""
    text = _require_str("plate", value)
    # ASCII first: upper() turns some non-ASCII letters into ASCII ones ("ß" -> "SS").
    compact = text.replace("-", "").replace(" ", "").upper() if text.isascii() else ""
    if compact and not compact.isalnum():  # other whitespace is rare: only then use the regex
        compact = _PLATE_SEPARATORS_RE.sub("", compact)
    if not _PLATE_RE.fullmatch(compact):
        raise IdentifierError("plate", "must be 6 letters and digits apart from dashes and spaces")
    if compact.isdigit() or compact.isalpha():
        raise IdentifierError("plate", "must contain at least one letter and one digit")
    return compact


def _iban(value: object) -> str:
    """IBAN (ISO 13616): country, check digits, BBAN; mod-97 must be 1; NL ones are 18 chars."""
    text = _require_str("iban", value)
    # ASCII first: upper() turns some non-ASCII letters into ASCII ones ("ß" -> "SS").
    compact = "".join(text.split()).upper() if text.isascii() else ""
    if not _IBAN_RE.fullmatch(compact):
        raise IdentifierError(
            "iban", "must be a 2-letter country code, 2 check digits and 11 to 30 letters/digits"
        )
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        raise IdentifierError(
            "iban", f"must be {expected} characters for this country (found {len(compact)})"
        )
    if compact[:2] == "NL" and not _NL_IBAN_RE.fullmatch(compact):
        raise IdentifierError("iban", "a Dutch IBAN has a 4-letter bank code and 10 digits")
    rearranged = compact[4:] + compact[:4]
    if int("".join(map(_IBAN_DIGITS.__getitem__, rearranged))) % 97 != 1:
        raise IdentifierError("iban", "check digits do not match (mod-97)")
    return compact


def _name(value: object) -> str:
    """Person or company name for matching: NFKC, collapsed whitespace, case-folded.

    Invisible format characters (zero-width spaces, soft hyphens) are dropped; control
    characters are refused. Diacritics are kept: they tell different names apart.
    """
    text = _require_str("name", value)
    if _NAME_FORBIDDEN_RE.search(text):
        raise IdentifierError("name", "contains control characters or unpaired surrogates")
    if text.isascii():  # ASCII is already NFKC and casefold() is lower() there: fast path
        canonical = " ".join(text.split()).lower()
        has_letter = _ASCII_LETTER_RE.search(canonical) is not None
    else:
        canonical = _fold_unicode_name(text)
        has_letter = any(c.isalpha() for c in canonical)
    if not has_letter:
        raise IdentifierError("name", "must contain at least one letter")
    if len(canonical) > NAME_MAX_LENGTH:
        raise IdentifierError(
            "name", f"must be at most {NAME_MAX_LENGTH} characters after normalisation"
        )
    return canonical


def _fold_unicode_name(text: str) -> str:
    """NFKC, drop format characters, collapse whitespace, casefold, NFKC again.

    Case folding can yield text that NFKC changes again (and the reverse), so the steps repeat
    until nothing changes; that makes :func:`normalise` idempotent for names.
    """
    for _ in range(4):
        folded = "".join(
            c for c in unicodedata.normalize("NFKC", text) if unicodedata.category(c) != "Cf"
        )
        folded = unicodedata.normalize("NFKC", " ".join(folded.split()).casefold())
        if folded == text:
            return folded
        text = folded
    raise IdentifierError("name", "does not reach a stable normal form")


_NORMALISERS: Mapping[str, Callable[[object], str]] = {
    "ean": _ean,
    "address": _address,
    "postcode": _postcode,
    "bag": _bag,
    "kvk": _kvk,
    "plate": _plate,
    "iban": _iban,
    "name": _name,
}


def normaliser(kind: str) -> Callable[[object], str]:
    """The normalising function of ``kind``, for callers that resolve the kind once up front.

    ``normaliser(kind)(value) == normalise(kind, value)``; raises :class:`IdentifierError` for
    an unknown kind.
    """
    function = _NORMALISERS.get(kind)
    if function is None:
        raise IdentifierError(kind, "unknown identifier kind")
    return function


def normalise(kind: str, value: object) -> str:
    """Return the canonical string of identifier ``value`` of ``kind`` (see IDENTIFIER_KINDS).

    Raises :class:`IdentifierError` (``kind``, reason) if the value is not valid for its kind
    or ``kind`` is unknown. The reason never contains the value.
    """
    function = _NORMALISERS.get(kind)
    if function is None:
        raise IdentifierError(kind, "unknown identifier kind")
    return function(value)


def postcode4(canonical_address_or_postcode: str) -> str:
    """The 4-digit postcode area of a canonical postcode or address (``1811AB 12A`` -> ``1811``).

    Used to generalise a location to an area; the input must already be canonical.
    """
    value = canonical_address_or_postcode
    if not (_POSTCODE_RE.fullmatch(value[:6]) and (len(value) == 6 or value[6] == " ")):
        raise IdentifierError("postcode", "not a canonical postcode or address")
    return value[:4]


def municipality_code(value: object) -> str:
    """CBS municipality code, canonical ``GM0363``: ``gm363``, ``GM 363`` and ``GM0363`` agree."""
    text = _require_str("municipality", value)
    compact = "".join(text.split()).upper() if text.isascii() else ""
    match = _MUNICIPALITY_RE.fullmatch(compact)
    if match is None:
        raise IdentifierError("municipality", "must be 'GM' followed by up to 4 digits")
    number = int(match[1])
    if number == 0:
        raise IdentifierError("municipality", "municipality number must not be 0")
    return f"GM{number:04d}"
