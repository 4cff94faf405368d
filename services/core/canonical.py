"""The canonical form of an envelope: what a partner's signature covers (RFC 8785, JCS).

The canonical form of the envelope *as sent*: the JSON object of every attribute except the
signature attributes (``signature`` and ``batch``, :data:`SIGNATURE_ATTRIBUTES`), serialised
per RFC 8785 (JSON Canonicalization Scheme): object members sorted by name, no whitespace,
UTF-8, strings escaped minimally (only ``"``, ``\\`` and control characters, with
``\\b \\t \\n \\f \\r`` short forms and lower-case ``\\u00xx`` otherwise), numbers in the
ECMAScript form (``4.5``, ``0.002``, ``1e-7``, ``1e+30``, ``1.0`` written as ``1``). The hub
canonicalises the bytes it received, not its own normalised reading of them, so a partner's
canonicaliser only has to agree on the envelope.

A single signature (:mod:`services.core.signing`) signs these bytes; a batch signature
(:mod:`services.core.batch_signing`) signs a Merkle root over their leaf hashes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

SIGNATURE_ATTRIBUTES = frozenset({"signature", "batch"})
"""Envelope attributes the signature does not cover (it cannot cover itself)."""

_EXACT_INTEGERS = 2**53
"""Beyond this an integer is not exact as an IEEE double; RFC 8785 writes it as the double."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a decoded JSON value (dicts, lists, str, numbers, bool, None).

    orjson sorts the members and escapes strings exactly as RFC 8785 asks; numbers that are
    floats are written in the ECMAScript form first (orjson's float text differs for some).
    Members are sorted by code point, which is RFC 8785's UTF-16 order for every name except
    ones mixing characters above U+FFFF with U+E000-U+FFFF; envelope and schema field names
    are ASCII.
    """
    return orjson.dumps(_numbers(value), option=orjson.OPT_SORT_KEYS)


def canonical_envelope(envelope: Mapping[str, Any]) -> bytes:
    """The bytes a partner signs: the canonical JSON of ``envelope`` without the signature
    attributes (``signature``, ``batch``)."""
    return canonical_json({k: v for k, v in envelope.items() if k not in SIGNATURE_ATTRIBUTES})


def _numbers(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of JSON value
    """``value`` with every float replaced by its ECMAScript text (as an orjson fragment)."""
    cls = value.__class__
    if cls is str or value is None or cls is bool:  # the common cases first, decided at once
        return value
    if cls is dict:
        return {k: v if v.__class__ is str else _numbers(v) for k, v in value.items()}
    if cls is float:
        return orjson.Fragment(es_number(value))
    if cls is int and -_EXACT_INTEGERS <= value <= _EXACT_INTEGERS:
        return value
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float):
        return orjson.Fragment(es_number(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _EXACT_INTEGERS:
        return orjson.Fragment(es_number(float(value)))
    return value


def es_number(value: float) -> str:
    """ECMAScript Number::toString of a finite double, as RFC 8785 section 3.2.2.3 requires."""
    if not math.isfinite(value):
        raise ValueError("JSON has no NaN or Infinity")
    if value.__class__ is float:
        text = repr(value)
        if "e" not in text and not text.endswith(".0"):
            # Python's shortest repr in fixed notation (1e-4 <= |value| < 1e16), not integral:
            # the same digits and decimal point as ECMAScript's (whose fixed range is wider)
            return text
    return _es_number_general(value)


def _es_number_general(value: float) -> str:
    """:func:`es_number` by the digits and exponent of the repr (any finite double)."""
    if value == 0:
        return "0"
    minus = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") if fraction != "0" else whole.lstrip("0")
    # position of the decimal point relative to the first significant digit
    point = len(whole.lstrip("0")) if whole != "0" else -(len(fraction) - len(fraction.lstrip("0")))
    point += int(exp_text) if exp_text else 0
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        return minus + digits + "0" * (n - k)
    if 0 < n <= 21:
        return minus + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return minus + "0." + "0" * (-n) + digits
    exponent = n - 1
    mark = "+" if exponent >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{minus}{head}e{mark}{abs(exponent)}"
