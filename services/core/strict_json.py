"""Reading what partners send as I-JSON (RFC 7493): one meaning for every reader.

A signature over the canonical form (RFC 8785) proves what was signed only when every reader of
the bytes sees the same value. Plain JSON does not promise that, so input that two readers
could read differently is refused, each with its own rejection code:

``duplicate_member``
    an object names a member twice. Parsers disagree on which value counts (orjson and
    Python keep the last, others the first), so ``{"source": "pwn", ..., "source":
    "liander", ...}`` would be routed as one thing and read elsewhere as another.
``integer_out_of_range``
    an integer beyond ±(2^53-1). It is not exact as an IEEE double, which is what RFC 8785
    writes, so ``9007199254740993`` and ``9007199254740992`` share one signature.
``number_out_of_range``
    a number that is no finite double (``1e400``, ``NaN``, ``Infinity``).
``number_inexact``
    a number literal that is not the double it reads as, written to as many significant
    digits as the literal has. ``9007199254740993.0`` reads as the double
    ``9007199254740992``, so it and ``9007199254740992.0`` would share one signature while a
    decimal reader sees two numbers. ``0.1`` (the double ``0.1000000000000000055…`` to one
    digit) and ``0.10000000000000001`` (to 17, as ``%.17g`` writes it) are faithful and read
    as they always did; so is every literal of at most 15 significant digits in the normal
    range.
``invalid_unicode``
    bytes that are not UTF-8, or a string holding a lone UTF-16 surrogate (``"\\ud800"``).
``unparseable``
    anything else that is not JSON.

**Speed.** The common, clean case costs one orjson parse, one orjson write of the parsed value,
a walk over its numbers and a byte-level scan for number literals that could be inexact (16
or more significant digits). A member name given twice is noticed without a second parser:
each member has exactly one structural ``:``, and a string's ``:`` is written the same way by
orjson as it was sent unless sent escaped (``\\u003a``), so an input without such escapes whose
``:`` count equals that of orjson's rewrite has no member that orjson dropped. Only input that
fails this cheap test (or orjson's parse) is read again, exactly, with Python's ``json`` and
hooks that refuse each rule broken and say which.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

import orjson

from services.core.errors import SignalRejected

CODES = frozenset(
    {
        "duplicate_member",
        "integer_out_of_range",
        "number_out_of_range",
        "number_inexact",
        "invalid_unicode",
        "unparseable",
    }
)
"""Every rejection code this module raises."""

MAX_EXACT_INTEGER = 2**53 - 1
"""The largest integer an IEEE double holds exactly, and so every JSON reader (RFC 7493 2.2)."""

_WIDE_FLOAT = float(2**63)
"""orjson reads an integer literal beyond 64 bits as a float; floats this large are re-read."""


class _Refused(Exception):  # noqa: N818 - internal signal from a json hook, never escapes
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def loads(raw: bytes | str) -> Any:
    """The JSON value of ``raw``, or :class:`SignalRejected` naming the I-JSON rule it breaks."""
    data = _utf8(raw)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        exact(data)  # names the rule broken when it is one of ours
        raise SignalRejected("unparseable", f"not valid JSON ({exc.msg})") from None
    if plain(data, value):
        return value
    return exact(data)


def plain(data: bytes, value: Any) -> bool:
    """Whether ``value`` (orjson's reading of ``data``) is certainly the only reading.

    False means "not shown": read ``data`` again with :func:`exact` to know.
    """
    try:
        written = orjson.dumps(value)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes: let the exact reader say
        return False
    return (
        written.count(b":") == data.count(b":")
        and b"\\u003" not in data  # an escaped ':' (\u003a) would hide a dropped member
        and _exact_numbers(
            value if value.__class__ is dict or value.__class__ is list else [value],
            b"e-" in data or b"E-" in data,
        )
        and not _long_number(data)
    )


def exact(data: bytes) -> Any:
    """Read ``data`` with a reader that refuses every I-JSON rule broken (slow; used rarely)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_utf8() from None
    return _read(text)


def _read(text: str) -> Any:
    try:
        value = _DECODER.decode(text)
        lone = _has_lone_surrogate(value)
    except _Refused as exc:
        raise SignalRejected(exc.code, exc.message) from None
    except json.JSONDecodeError as exc:
        raise SignalRejected(
            "unparseable", f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise SignalRejected("unparseable", "not valid JSON (nested too deeply)") from None
    if lone:
        raise SignalRejected(
            "invalid_unicode",
            "a string holds a lone UTF-16 surrogate escape (such as \\ud800 without its pair), "
            "which is no Unicode text (RFC 7493 2.1). Fix: escape characters above U+FFFF as "
            "a surrogate pair, or send them as UTF-8",
        )
    return value


def items(
    raw: bytes, *, signal_id: Callable[[str], str | None] = lambda text: None
) -> tuple[bool, list[Any]]:
    """A body of one JSON object or an array of them: (was it one object, its items).

    Each item that breaks a rule is replaced by its :class:`SignalRejected` (with the signal
    id ``signal_id`` finds in the item's text), so one bad signal does not spoil the others; a
    body that is not JSON at all raises it. A body that is neither an object nor an array has
    no items.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        clean = False
    else:
        clean = plain(raw, value)
    if clean:
        if isinstance(value, list):
            return False, value
        return (True, [value]) if isinstance(value, dict) else (False, [])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_utf8() from None
    start = _skip(text, 0)
    if text.startswith("[", start):
        return False, _array(text, start + 1, signal_id)
    one = _one(text, signal_id)
    return (True, [one]) if isinstance(one, dict | SignalRejected) else (False, [])


def _one(text: str, signal_id: Callable[[str], str | None]) -> Any:
    """The value of one item, or the :class:`SignalRejected` of the rule it breaks.

    An item that is no JSON at all (neither orjson nor the exact reader reads it) makes the
    whole body unreadable and raises; an item orjson reads but the exact reader cannot (nested
    beyond Python's recursion limit) is refused on its own.
    """
    data = text.encode("utf-8")
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        json_text = False
    else:
        if plain(data, value):
            return value
        json_text = True
    try:
        return _read(text)
    except SignalRejected as exc:
        if exc.code == "unparseable" and not json_text:
            raise
        exc.signal_id = signal_id(text)
        return exc


def _array(text: str, index: int, signal_id: Callable[[str], str | None]) -> list[Any]:
    """Each item of the JSON array whose ``[`` ends just before ``index``, read on its own."""
    found: list[Any] = []
    index = _skip(text, index)
    if text.startswith("]", index):
        if _skip(text, index + 1) != len(text):
            raise SignalRejected("unparseable", "not valid JSON (data after the array)")
        return found
    while True:
        end = _end(text, index)
        item = text[index:end].rstrip(" \t\r\n")
        if not item:
            raise SignalRejected("unparseable", f"not valid JSON (item {len(found)} is missing)")
        found.append(_one(item, signal_id))
        index = _skip(text, end)
        if text.startswith(",", index):
            index = _skip(text, index + 1)
            continue
        if text.startswith("]", index) and _skip(text, index + 1) == len(text):
            return found
        raise SignalRejected("unparseable", "not valid JSON (the array is not closed properly)")


def _end(text: str, index: int) -> int:
    """Where the JSON value starting at ``index`` ends, by its brackets and strings alone
    (without recursion: items nested beyond Python's limit are still found; whether the item
    is valid JSON is for its reader to say)."""
    depth = 0
    for match in _TOKENS.finditer(text, index):
        piece = match.group()
        if piece[0] == '"':
            if depth == 0:
                return match.end()
        elif piece in "[{":
            depth += 1
        elif piece in "]}":
            if depth == 0:  # a number or literal ends where the array closes
                return match.start()
            depth -= 1
            if depth == 0:
                return match.end()
        elif depth == 0:  # the ',' after a number or literal
            return match.start()
    return len(text)


def _skip(text: str, index: int) -> int:
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    return index


def _utf8(raw: bytes | str) -> bytes:
    if isinstance(raw, bytes):
        return raw
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError:  # a str holding a lone surrogate
        raise _invalid_utf8() from None


def _invalid_utf8() -> SignalRejected:
    return SignalRejected(
        "invalid_unicode", "the input is not valid UTF-8 (RFC 7493 2.1). Fix: send UTF-8 text"
    )


def _exact_numbers(value: Any, negative_exponent: bool) -> bool:
    """No integer beyond ±(2^53-1), no float orjson may have made of a longer integer, no
    subnormal float, and no zero that a literal such as ``1e-400`` may have underflowed to
    (possible only when the text holds a negative exponent)."""
    for item in value.values() if value.__class__ is dict else value:
        cls = item.__class__
        if cls is str or cls is bool or item is None:
            continue
        if cls is int:
            if not -MAX_EXACT_INTEGER <= item <= MAX_EXACT_INTEGER:
                return False
        elif cls is float:
            if not -_WIDE_FLOAT < item < _WIDE_FLOAT:
                return False
            if -_SMALLEST_NORMAL < item < _SMALLEST_NORMAL and (item or negative_exponent):
                return False
        elif (cls is dict or cls is list) and not _exact_numbers(item, negative_exponent):
            return False
    return True


def _long_number(data: bytes) -> bool:
    """Whether ``data`` may hold a number literal of 16 or more significant digits (one of at
    most 15 is always faithful in the normal range). A number follows ``:``, ``[``, ``,`` or
    the start, after blanks and a minus sign; a string's digits follow its quote (an EAN, a
    UUID, a signature), so they rarely send a signal to the exact reader, and when they do it
    only costs time. Byte translation and substring search: no per-byte Python work."""
    return _RUN in b":" + data.translate(_NUMBER_CLASSES, b" \t\r\n-")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        counts = Counter(name for name, _ in pairs)
        named = sorted(n for n, seen in counts.items() if seen > 1 and n in _ENVELOPE_NAMES)
        which = f"member {named[0]!r}" if named else "a member name"
        raise _Refused(
            "duplicate_member",
            f"{which} appears twice in one object: readers disagree on which value counts, so "
            "the signal could mean two things (RFC 7493 2.3). Fix: send each member once",
        )
    return value


def _int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:  # more digits than Python converts (thousands): far out of range
        value = MAX_EXACT_INTEGER + 1
    if not -MAX_EXACT_INTEGER <= value <= MAX_EXACT_INTEGER:
        raise _Refused(
            "integer_out_of_range",
            f"an integer lies beyond ±{MAX_EXACT_INTEGER} (2^53-1), where numbers are not "
            "exact for every reader and the signature cannot protect their digits "
            "(RFC 7493 2.2). Fix: send such values as strings",
        )
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _number_out_of_range()
    if not faithful(text, value):
        raise _Refused(
            "number_inexact",
            "a number has digits no double holds: it reads as a different number than it "
            "says, so another text with the same double would carry the same signature "
            "(RFC 7493 2.2). Fix: write numbers as your language's shortest round-trip form "
            "(JSON.stringify, repr, %.17g), or send exact values such as identifiers as strings",
        )
    return value


def faithful(literal: str, value: float) -> bool:
    """Whether the number ``literal`` is the double ``value`` it reads as, correctly rounded
    to the literal's own significant digits (trailing zeros are not significant).

    Every literal a double printer writes (shortest round trip, ``%.17g``, fixed digits) is
    faithful; ``9007199254740993.0``, which reads as ``9007199254740992``, is not.
    """
    number = Decimal(literal)
    if number.is_zero():
        return True  # every zero reads as a zero
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # noqa: S101 - finite: float() accepted it
    unit = exponent + _trailing_zeros(digits)
    # |literal - value| <= half a unit of the literal's last significant digit, exactly
    return abs(Fraction(number) - Fraction(value)) * 2 <= Fraction(10) ** unit


def _trailing_zeros(digits: tuple[int, ...]) -> int:
    count = 0
    for digit in reversed(digits):
        if digit:
            break
        count += 1
    return count


def _constant(name: str) -> Any:
    raise _number_out_of_range()


def _number_out_of_range() -> _Refused:
    return _Refused(
        "number_out_of_range",
        "a number is not a finite double (beyond about 1.8e308, NaN or Infinity; RFC 7493 "
        "2.2). Fix: send values in range",
    )


_ENVELOPE_NAMES = frozenset(
    {
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "dataschema",
        "datacontenttype",
        "subject",
        "traceparent",
        "signature",
        "batch",
        "data",
    }
)
"""Member names safe to repeat in a reason (never a value that may be an identifier)."""

_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant
)
_SMALLEST_NORMAL = 2.2250738585072014e-308
_NUMBER_CLASSES = bytes.maketrans(b"0123456789.,[", b"0" * 11 + b"::")
"""Digits and the point become ``0``; the characters a number can follow become ``:``."""
_RUN = b":" + b"0" * 16
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},]')
"""A whole string, or one structural character (for :func:`_end`)."""
