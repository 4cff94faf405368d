"""CEL's conversion functions, string functions and timestamp/duration support.

``int()``, ``uint()``, ``double()``, ``string()``, ``bytes()``, ``timestamp()`` and
``duration()`` follow the CEL spec: strict parsing (no Python leniencies such as ``int(" 5")``
or ``float("1_0")``), int64/uint64 range checks, RFC 3339 timestamps and Go-style durations.
``matches`` uses RE2, so a pattern in a covenant can never backtrack catastrophically.
``postcode4()`` is Schakel's own: the 4-digit postcode area of a canonical address or postcode,
the one thing a condition may learn of such an identifier besides its presence (see
:mod:`.condition_fields`). So are ``hour()``, ``day()``, ``week()``, ``month()`` and ``year()``:
a date or date-time string (``time``, ``data.received_at``) as ``generalise:<unit>`` shares it
(``"2026-09"`` for a month), the form in which a condition may read a time no finer than the
rule shares it (see :mod:`.condition_granularity`).
Errors are :class:`~services.core.errors.ConditionEvaluationError` naming the expression
(``label``) and CEL types, never a value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo

import re2  # type: ignore[import-untyped]

from services.core.covenant.cel_values import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    INT,
    LIST,
    MAP,
    MAX_DURATION,
    NUMERIC_KINDS,
    STRING,
    TIMESTAMP,
    UINT,
    UInt,
    aware,
    check_duration,
    check_int,
    check_uint,
    fail,
    kind_name,
    kind_of,
    no_overload,
)
from services.core.covenant.transforms import coarsen_time
from services.core.errors import IdentifierError
from services.core.identifiers import postcode4 as _postcode4

# --- conversions ----------------------------------------------------------------------------

_INT_TEXT: Final = re.compile(r"[+-]?[0-9]+")
_DOUBLE_TEXT: Final = re.compile(
    r"[+-]?(?:[0-9]+\.?[0-9]*(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?"
    r"|(?i:inf|infinity|nan))"
)


def _epoch_seconds(stamp: datetime, label: str) -> int:
    delta = aware(stamp, label) - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400 + delta.seconds


def to_int(value: Any, label: str) -> int:
    """CEL ``int()`` of an int, uint, double (truncated), decimal string or timestamp."""
    kind = kind_of(value)
    if kind in (INT, UINT):
        return check_int(int(value), label)
    if kind == DOUBLE:
        # The double itself must lie strictly inside the int64 range (as in cel-go).
        if not -(2.0**63) < value < 2.0**63:
            raise fail(label, "int64 overflow")
        return int(value)
    if kind == STRING:
        if _INT_TEXT.fullmatch(value) is None:
            raise fail(label, "string is not an integer")
        return check_int(int(value), label)
    if kind == TIMESTAMP:
        return _epoch_seconds(value, label)
    raise no_overload(label, "int()", value)


def to_uint(value: Any, label: str) -> UInt:
    """CEL ``uint()`` of an int, uint, double (truncated) or decimal string."""
    kind = kind_of(value)
    if kind in (INT, UINT):
        return check_uint(int(value), label)
    if kind == DOUBLE:
        # Negative doubles do not convert, not even those that truncate to zero.
        if not 0.0 <= value < 2.0**64:
            raise fail(label, "uint64 overflow")
        return UInt(int(value))
    if kind == STRING:
        if _INT_TEXT.fullmatch(value) is None:
            raise fail(label, "string is not an unsigned integer")
        return check_uint(int(value), label)
    raise no_overload(label, "uint()", value)


def to_double(value: Any, label: str) -> float:
    """CEL ``double()`` of a number or a decimal (or inf/nan) string."""
    kind = kind_of(value)
    if kind in NUMERIC_KINDS:
        try:
            return float(value)
        except OverflowError:
            raise fail(label, "number out of double range") from None
    if kind == STRING:
        if _DOUBLE_TEXT.fullmatch(value) is None:
            raise fail(label, "string is not a number")
        return float(value)
    raise no_overload(label, "double()", value)


def format_double(value: float) -> str:
    """A double the way the reference implementation prints it: positional, shortest digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, fractional seconds only when present."""
    utc = value.astimezone(UTC)
    text = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}"
    )
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return f"{text}Z"


def format_duration(value: timedelta) -> str:
    """Seconds with a ``s`` suffix, e.g. ``3600s`` or ``1.5s``, as CEL prints a duration."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    text = f"{sign}{seconds}"
    if fraction:
        text += f".{fraction:06d}".rstrip("0")
    return f"{text}s"


def to_string(value: Any, label: str) -> str:  # noqa: PLR0911 - a case per CEL type
    """CEL ``string()`` of a string, number, bool, UTF-8 bytes, timestamp or duration."""
    kind = kind_of(value)
    if kind == STRING:
        return str(value)
    if kind in (INT, UINT):
        return str(int(value))
    if kind == DOUBLE:
        return format_double(float(value))
    if kind == BOOL:
        return "true" if value else "false"
    if kind == BYTES:
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise fail(label, "bytes are not valid UTF-8") from None
    if kind == TIMESTAMP:
        return format_timestamp(aware(value, label))
    if kind == DURATION:
        return format_duration(value)
    raise no_overload(label, "string()", value)


def to_bytes(value: Any, label: str) -> bytes:
    """CEL ``bytes()`` of bytes or a string (UTF-8 encoded)."""
    kind = kind_of(value)
    if kind == BYTES:
        return bytes(value)
    if kind == STRING:
        return str(value).encode("utf-8")
    raise no_overload(label, "bytes()", value)


_RFC3339: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_timestamp(text: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime, else None.

    Fractions finer than a microsecond are truncated; a leap second (``23:59:60``) becomes the
    last representable instant before the next minute, as ``datetime`` has no second 60.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    micros = int((fraction or "0").ljust(6, "0")[:6])
    if second == "60":
        second, micros = "59", 999_999
    try:
        offset = timedelta(0)
        if not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            if sign == "-":
                offset = -offset
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone(offset),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


_MAX_DURATION_NANOS: Final = int(MAX_DURATION.total_seconds()) * 1_000_000_000
_DURATION_PART: Final = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_NANOS_PER_UNIT: Final = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration(text: str) -> timedelta | None:
    """A Go-style duration (``1h30m``, ``-1.5s``, ``250ms``) as a timedelta, else None.

    Sub-microsecond parts are truncated toward zero (timedelta resolution).
    """
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return timedelta(0)
    if not body:
        return None
    nanos = Decimal(0)
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None or match.group(1) in ("", "."):
            return None
        nanos += Decimal(match.group(1)) * _NANOS_PER_UNIT[match.group(2)]
        position = match.end()
    if text.startswith("-"):
        nanos = -nanos
    if abs(nanos) > _MAX_DURATION_NANOS:
        return None
    return timedelta(microseconds=int(nanos / 1000))


def to_timestamp(value: Any, label: str) -> datetime:
    """CEL ``timestamp()`` of an RFC 3339 string, an int (Unix seconds) or a timestamp."""
    kind = kind_of(value)
    if kind == TIMESTAMP:
        return aware(value, label)
    if kind == STRING:
        parsed = parse_timestamp(value)
        if parsed is None:
            raise fail(label, "string is not an RFC 3339 timestamp")
        return parsed
    if kind == INT:
        try:
            return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(value))
        except OverflowError:
            raise fail(label, "timestamp out of range") from None
    raise no_overload(label, "timestamp()", value)


def to_duration(value: Any, label: str) -> timedelta:
    """CEL ``duration()`` of a string such as ``"1h30m"`` or of a duration."""
    kind = kind_of(value)
    if kind == DURATION:
        return check_duration(value, label)
    if kind == STRING:
        parsed = parse_duration(value)
        if parsed is None:
            raise fail(label, "string is not a duration such as 1h30m")
        return parsed
    raise no_overload(label, "duration()", value)


# --- functions ------------------------------------------------------------------------------


def size(value: Any, label: str) -> int:
    """CEL ``size()``: code points of a string, bytes, list elements or map entries."""
    kind = kind_of(value)
    if kind in (STRING, BYTES, LIST, MAP):
        return len(value)
    raise no_overload(label, "size()", value)


def postcode_area(value: Any, label: str) -> str:
    """``postcode4()``: ``1811AB 12A`` (or ``1811AB``) -> ``1811``, as ``generalise:postcode4``."""
    if type(value) is not str and kind_name(value) != STRING:
        raise no_overload(label, "postcode4()", value)
    try:
        return _postcode4(str(value))
    except IdentifierError:
        # the reason would be the same for every bad value; the value itself is never named
        raise fail(label, "not a canonical address or postcode") from None


def time_unit(unit: str) -> Callable[[Any, str], str]:
    """``<unit>(value)``: the date or date-time string ``value`` as ``generalise:<unit>``
    shares it, in Dutch local time."""

    def coarsen(value: Any, label: str) -> str:
        if type(value) is not str:
            raise no_overload(label, f"{unit}()", value)
        try:
            return coarsen_time(unit, value)
        except ValueError:
            raise fail(label, "not a date or date-time string") from None

    return coarsen


class RegexError(ValueError):
    """A pattern that is not valid RE2 syntax (the message never repeats the subject text)."""


def _regex_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # report through RegexError, not on the process's stderr
    options.never_capture = True  # matches() only asks whether there is a match
    return options


_REGEX_OPTIONS: Final = _regex_options()


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """An RE2 program for ``pattern`` (linear time: no catastrophic backtracking)."""
    try:
        return re2.compile(pattern, _REGEX_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "syntax error"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(f"invalid RE2 pattern: {reason}") from None


def matches(text: Any, pattern: Any, label: str) -> bool:
    """CEL ``matches``: does the RE2 ``pattern`` match anywhere in ``text``."""
    if (type(text) is not str or type(pattern) is not str) and (
        kind_name(text) != STRING or kind_name(pattern) != STRING
    ):
        raise no_overload(label, "matches()", text, pattern)
    try:
        program = compile_regex(str(pattern))
    except RegexError:
        # RE2's reason quotes the pattern, which here comes from the data: leave it out.
        raise fail(label, "invalid RE2 pattern") from None
    return program.search(str(text)) is not None


_FIXED_OFFSET: Final = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")


@lru_cache(maxsize=64)
def time_zone(name: str) -> tzinfo | None:
    """A time zone from an IANA name (``Europe/Amsterdam``) or a ``+01:00`` offset, else None."""
    fixed = _FIXED_OFFSET.fullmatch(name)
    if fixed is not None:
        offset = timedelta(hours=int(fixed.group(2)), minutes=int(fixed.group(3)))
        if offset >= timedelta(hours=24):
            return None
        return timezone(-offset if fixed.group(1) == "-" else offset)
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # unknown zone (a KeyError), or not a zone key
        return None


def _total_micros(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def _truncating_div(a: int, b: int) -> int:
    quotient = abs(a) // b
    return -quotient if a < 0 else quotient


_DURATION_UNITS_US: Final = {
    "getHours": 3_600_000_000,
    "getMinutes": 60_000_000,
    "getSeconds": 1_000_000,
    "getMilliseconds": 1_000,
}
_TIMESTAMP_PARTS: Final[dict[str, Callable[[datetime], int]]] = {
    "getFullYear": lambda t: t.year,
    "getMonth": lambda t: t.month - 1,  # CEL counts months from 0
    "getDayOfMonth": lambda t: t.day - 1,  # from 0
    "getDate": lambda t: t.day,  # from 1
    "getDayOfWeek": lambda t: t.isoweekday() % 7,  # Sunday is 0
    "getDayOfYear": lambda t: t.timetuple().tm_yday - 1,  # from 0
    "getHours": lambda t: t.hour,
    "getMinutes": lambda t: t.minute,
    "getSeconds": lambda t: t.second,
    "getMilliseconds": lambda t: t.microsecond // 1000,
}
TIMESTAMP_ACCESSORS: Final = frozenset(_TIMESTAMP_PARTS)
DURATION_ACCESSORS: Final = frozenset(_DURATION_UNITS_US)


def time_part(value: Any, accessor: str, zone: tzinfo | None, label: str) -> int:
    """A timestamp accessor (in ``zone``, UTC by default) or a duration's total in a unit."""
    kind = kind_of(value)
    if kind == DURATION and zone is None and accessor in _DURATION_UNITS_US:
        return _truncating_div(_total_micros(value), _DURATION_UNITS_US[accessor])
    if kind != TIMESTAMP:
        raise no_overload(label, f"{accessor}()", value)
    try:
        local = aware(value, label).astimezone(zone or UTC)
    except OverflowError:
        raise fail(label, "timestamp out of range") from None
    return _TIMESTAMP_PARTS[accessor](local)
