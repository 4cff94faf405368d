"""Runtime values and operators of the CEL subset that covenant conditions use.

CEL values are plain Python values so signal data (parsed JSON) needs no conversion on the hot
path: ``int`` is a CEL int, :class:`UInt` a CEL uint, ``float`` a double, ``bool`` a bool (kept
apart from ``int`` even though Python makes it a subclass), ``str``, ``bytes``, ``None`` (null),
``list``/``tuple`` (list), ``dict``/``Mapping`` (map), an aware ``datetime`` (timestamp) and a
``timedelta`` (duration).

Every operator checks the CEL types of its operands and raises
:class:`~services.core.errors.ConditionEvaluationError` where CEL reports an error (no matching
overload, int64 overflow, division by zero, missing key). The ``label`` each function takes is
the piece of condition source being evaluated, so messages name the expression and the CEL
types involved but never a data value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from services.core.errors import ConditionEvaluationError

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
UINT64_MAX: Final = 2**64 - 1


class UInt(int):
    """A CEL ``uint``: its own Python type so that int and uint never mix silently."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


INT: Final = "int"
UINT: Final = "uint"
DOUBLE: Final = "double"
STRING: Final = "string"
BYTES: Final = "bytes"
BOOL: Final = "bool"
NULL: Final = "null_type"
LIST: Final = "list"
MAP: Final = "map"
TIMESTAMP: Final = "timestamp"
DURATION: Final = "duration"

NUMERIC_KINDS: Final = frozenset({INT, UINT, DOUBLE})
ORDERED_KINDS: Final = frozenset({INT, UINT, DOUBLE, STRING, BYTES, BOOL, TIMESTAMP, DURATION})
KEY_KINDS: Final = frozenset({INT, UINT, BOOL, STRING})

_KIND_BY_TYPE: Final[dict[type, str]] = {
    int: INT,
    UInt: UINT,
    float: DOUBLE,
    str: STRING,
    bytes: BYTES,
    bool: BOOL,
    type(None): NULL,
    list: LIST,
    tuple: LIST,
    dict: MAP,
    datetime: TIMESTAMP,
    timedelta: DURATION,
}
_NUMERIC_TYPES: Final = frozenset({int, float, UInt})
_ORDERED_TYPES: Final = frozenset({int, float, UInt, str, bytes, bool, timedelta})

MAX_DURATION: Final = timedelta(seconds=315_576_000_000)
"""CEL durations span ±10,000 years (google.protobuf.Duration); timestamps span the years 1 to
9999, as ``datetime`` does."""


# Checked in order for values of other types (subclasses): bool before int, as in Python.
_KIND_BY_BASE: Final[tuple[tuple[type | tuple[type, ...], str], ...]] = (
    (bool, BOOL),
    (UInt, UINT),
    (int, INT),
    (float, DOUBLE),
    (str, STRING),
    (bytes, BYTES),
    (Mapping, MAP),
    ((list, tuple), LIST),
    (datetime, TIMESTAMP),
    (timedelta, DURATION),
)


def kind_of(value: Any) -> str:
    """The CEL type of ``value``; an error for Python values CEL has no type for."""
    kind = _KIND_BY_TYPE.get(type(value))
    if kind is not None:
        return kind
    for base, base_kind in _KIND_BY_BASE:
        if isinstance(value, base):
            return base_kind
    raise ConditionEvaluationError(f"a value of Python type {type(value).__name__} has no CEL type")


def kind_name(value: Any) -> str:
    """Like :func:`kind_of`, for error messages: never raises."""
    try:
        return kind_of(value)
    except ConditionEvaluationError:
        return f"unsupported {type(value).__name__}"


def article(kind: str) -> str:
    """``kind`` with its indefinite article, for messages ("an int", "a string")."""
    return f"an {kind}" if kind[:1] in ("i", "u") and kind != "uint" else f"a {kind}"


def fail(label: str, message: str) -> ConditionEvaluationError:
    """An evaluation error for the expression ``label`` (condition source, never data)."""
    return ConditionEvaluationError(f"{label}: {message}")


def no_overload(label: str, op: str, *values: Any) -> ConditionEvaluationError:
    """CEL's ``no_matching_overload`` error, naming the operand types only."""
    kinds = ", ".join(kind_name(v) for v in values)
    return fail(label, f"no such overload: {op} on ({kinds})")


def check_int(value: int, label: str) -> int:
    """``value`` if it fits an int64, else CEL's overflow error."""
    if INT64_MIN <= value <= INT64_MAX:
        return value
    raise fail(label, "int64 overflow")


def check_uint(value: int, label: str) -> UInt:
    """``value`` as a uint if it fits a uint64, else CEL's overflow error."""
    if 0 <= value <= UINT64_MAX:
        return UInt(value)
    raise fail(label, "uint64 overflow")


def check_duration(value: timedelta, label: str) -> timedelta:
    if -MAX_DURATION <= value <= MAX_DURATION:
        return value
    raise fail(label, "duration out of range")


def aware(value: datetime, label: str) -> datetime:
    if value.utcoffset() is None:
        raise fail(label, "timestamp has no time zone")
    return value


# --- equality, ordering, membership ---------------------------------------------------------


def equals(a: Any, b: Any) -> bool:  # noqa: PLR0911 - a case per CEL type
    """CEL ``==``: heterogeneous values are unequal (no error), numbers compare across types."""
    ta = type(a)
    tb = type(b)
    if ta is tb and ta in _ORDERED_TYPES:
        return bool(a == b)
    if ta in _NUMERIC_TYPES and tb in _NUMERIC_TYPES:
        return bool(a == b)
    ka = kind_of(a)
    kb = kind_of(b)
    if ka in NUMERIC_KINDS and kb in NUMERIC_KINDS:
        return bool(a == b)
    if ka != kb:
        return False
    if ka == LIST:
        return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b, strict=True))
    if ka == MAP:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            found, other = map_lookup(b, key, "==")
            if not found or not equals(value, other):
                return False
        return True
    return bool(a == b)


def map_lookup(mapping: Mapping[Any, Any], key: Any, label: str) -> tuple[bool, Any]:
    """Find ``key`` in a CEL map: ``(found, value)``; an error for keys CEL maps cannot have.

    Strings use the dict directly. Ints, uints and bools scan, because Python would match
    ``True`` against the key ``1``, which CEL keeps apart.
    """
    kind = STRING if type(key) is str else kind_of(key)
    if kind == STRING:
        try:
            return True, mapping[key]
        except KeyError:
            return False, None
    if kind == BOOL:
        for k, v in mapping.items():
            if type(k) is bool and k is key:
                return True, v
        return False, None
    if kind in (INT, UINT):
        for k, v in mapping.items():
            if type(k) is not bool and kind_name(k) in (INT, UINT) and k == key:
                return True, v
        return False, None
    raise fail(label, f"{article(kind)} cannot be a map key")


def contains(container: Any, element: Any, label: str) -> bool:
    """CEL ``element in container`` for a list (by equality) or a map (by key)."""
    kind = kind_of(container)
    if kind == LIST:
        if type(element) is str:
            return element in container
        return any(equals(element, item) for item in container)
    if kind == MAP:
        return map_lookup(container, element, label)[0]
    raise no_overload(label, "in", element, container)


class MemberSet:
    """A constant list or map-key set turned into hash lookups for ``x in <constant>``.

    Elements are partitioned by CEL type so that Python's ``True == 1`` does not leak into
    CEL, and numbers of different types still compare by value (``1 in [1.0]`` is true).
    """

    __slots__ = ("bools", "numbers", "others", "strings")

    def __init__(self, elements: list[Any]) -> None:
        strings: set[str] = set()
        numbers: set[int | float] = set()
        bools: set[bool] = set()
        others: list[Any] = []
        for element in elements:
            kind = kind_of(element)
            if kind == STRING:
                strings.add(element)
            elif kind in NUMERIC_KINDS:
                if not (type(element) is float and math.isnan(element)):  # NaN equals nothing
                    numbers.add(element)
            elif kind == BOOL:
                bools.add(element)
            else:
                others.append(element)
        self.strings: Final = frozenset(strings)
        self.numbers: Final = frozenset(numbers)
        self.bools: Final = frozenset(bools)
        self.others: Final = tuple(others)

    def __contains__(self, element: Any) -> bool:  # noqa: PLR0911 - a case per CEL type
        t = type(element)
        if t is str:
            return element in self.strings
        if t is int or t is float or t is UInt:
            return element in self.numbers
        if t is bool:
            return element in self.bools
        kind = kind_of(element)
        if kind == STRING:
            return str(element) in self.strings
        if kind in NUMERIC_KINDS:
            return element in self.numbers
        if kind == BOOL:
            return bool(element) in self.bools
        return any(equals(element, other) for other in self.others)


ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def compare(op: str, a: Any, b: Any, label: str) -> bool:
    """CEL ``< <= > >=``: same-type orderable values, or numbers of any numeric type.

    NaN cannot be ordered: comparing it is an error (as in cel-go and the Rust library), not
    the silent ``false`` of IEEE 754.
    """
    ta = type(a)
    tb = type(b)
    if (ta is tb and ta in _ORDERED_TYPES) or (ta in _NUMERIC_TYPES and tb in _NUMERIC_TYPES):
        if (ta is float or tb is float) and (_is_nan(a) or _is_nan(b)):
            raise fail(label, "NaN cannot be ordered")
        return ORDERING[op](a, b)
    ka = kind_of(a)
    kb = kind_of(b)
    if ka in NUMERIC_KINDS and kb in NUMERIC_KINDS:
        if _is_nan(a) or _is_nan(b):
            raise fail(label, "NaN cannot be ordered")
        return ORDERING[op](a, b)
    if ka == kb and ka in ORDERED_KINDS:
        if ka == TIMESTAMP:
            aware(a, label)
            aware(b, label)
        return ORDERING[op](a, b)
    raise no_overload(label, op, a, b)


# --- arithmetic -----------------------------------------------------------------------------


def _shift(stamp: datetime, delta: timedelta, label: str) -> datetime:
    try:
        return aware(stamp, label) + delta
    except OverflowError:
        raise fail(label, "timestamp out of range") from None


def add(a: Any, b: Any, label: str) -> Any:  # noqa: PLR0911 - a case per CEL type
    """CEL ``+`` on numbers of one type, strings, bytes, lists, timestamps and durations."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            return check_int(a + b, label)
        if ta is float or ta is str or ta is bytes:
            return a + b
        if ta is UInt:
            return check_uint(a + b, label)
    ka = kind_of(a)
    kb = kind_of(b)
    if ka == kb == LIST:
        return [*a, *b]
    if ka == kb == DURATION:
        return check_duration(a + b, label)
    if ka == TIMESTAMP and kb == DURATION:
        return _shift(a, b, label)
    if ka == DURATION and kb == TIMESTAMP:
        return _shift(b, a, label)
    if ka == kb and ka in (INT, UINT, DOUBLE, STRING, BYTES):
        return add(_plain(a, ka), _plain(b, kb), label)
    raise no_overload(label, "+", a, b)


def subtract(a: Any, b: Any, label: str) -> Any:  # noqa: PLR0911 - a case per CEL type
    """CEL ``-`` on numbers of one type, timestamps and durations."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            return check_int(a - b, label)
        if ta is float:
            return a - b
        if ta is UInt:
            return check_uint(a - b, label)
    ka = kind_of(a)
    kb = kind_of(b)
    if ka == kb == DURATION:
        return check_duration(a - b, label)
    if ka == kb == TIMESTAMP:
        return check_duration(aware(a, label) - aware(b, label), label)
    if ka == TIMESTAMP and kb == DURATION:
        return _shift(a, -b, label)
    if ka == kb and ka in NUMERIC_KINDS:
        return subtract(_plain(a, ka), _plain(b, kb), label)
    raise no_overload(label, "-", a, b)


def multiply(a: Any, b: Any, label: str) -> Any:
    """CEL ``*`` on two numbers of the same type."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            return check_int(a * b, label)
        if ta is float:
            return a * b
        if ta is UInt:
            return check_uint(a * b, label)
    ka = kind_of(a)
    if ka == kind_of(b) and ka in NUMERIC_KINDS:
        return multiply(_plain(a, ka), _plain(b, ka), label)
    raise no_overload(label, "*", a, b)


def divide(a: Any, b: Any, label: str) -> Any:
    """CEL ``/``: ints truncate toward zero, division by zero is an error except for doubles."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            if b == 0:
                raise fail(label, "division by zero")
            quotient = abs(a) // abs(b)
            return check_int(-quotient if (a < 0) != (b < 0) else quotient, label)
        if ta is float:
            if b == 0.0:
                if math.isnan(a) or a == 0.0:
                    return math.nan
                return math.copysign(math.inf, a) * math.copysign(1.0, b)
            return a / b
        if ta is UInt:
            if b == 0:
                raise fail(label, "division by zero")
            return UInt(a // b)
    ka = kind_of(a)
    if ka == kind_of(b) and ka in NUMERIC_KINDS:
        return divide(_plain(a, ka), _plain(b, ka), label)
    raise no_overload(label, "/", a, b)


def modulo(a: Any, b: Any, label: str) -> Any:
    """CEL ``%`` on ints (the sign follows the dividend) and uints; not on doubles."""
    ta = type(a)
    if ta is type(b):
        if ta is int:
            if b == 0:
                raise fail(label, "modulo by zero")
            if a == INT64_MIN and b == -1:
                raise fail(label, "int64 overflow")
            remainder = abs(a) % abs(b)
            return -remainder if a < 0 else remainder
        if ta is UInt:
            if b == 0:
                raise fail(label, "modulo by zero")
            return UInt(a % b)
    ka = kind_of(a)
    if ka == kind_of(b) and ka in (INT, UINT):
        return modulo(_plain(a, ka), _plain(b, ka), label)
    raise no_overload(label, "%", a, b)


def negate(a: Any, label: str) -> Any:
    """CEL unary ``-`` on ints, doubles and durations (not on uints)."""
    ta = type(a)
    if ta is int:
        return check_int(-a, label)
    if ta is float:
        return -a
    kind = kind_of(a)
    if kind == DURATION:
        return check_duration(-a, label)
    if kind in (INT, DOUBLE):
        return negate(_plain(a, kind), label)
    raise no_overload(label, "-", a)


def _plain(value: Any, kind: str) -> Any:
    """A value of an exotic subclass (an ``int`` subclass, say) as the plain type of its kind."""
    if kind == INT:
        return int(value)
    if kind == UINT:
        return UInt(value)
    if kind == DOUBLE:
        return float(value)
    if kind == STRING:
        return str(value)
    return bytes(value)


def index_value(container: Any, key: Any, label: str) -> Any:
    """CEL ``container[key]``: a list element by int/uint position, or a map value by key."""
    ctype = type(container)
    if ctype is list or ctype is tuple:
        ktype = type(key)
        if ktype is int or ktype is UInt:
            if 0 <= key < len(container):
                return container[key]
            raise fail(label, "list index out of range")
        raise no_overload(label, "[]", container, key)
    kind = kind_of(container)
    if kind == MAP:
        found, value = map_lookup(container, key, label)
        if found:
            return value
        raise fail(label, "no such key")
    if kind == LIST and kind_of(key) in (INT, UINT):
        return index_value(list(container), int(key), label)
    raise no_overload(label, "[]", container, key)


def select_field(container: Any, name: str, label: str) -> Any:
    """CEL ``container.name`` on a map; a missing key is an error (``has()`` tests presence)."""
    if type(container) is dict:
        try:
            return container[name]
        except KeyError:
            raise fail(label, "no such field") from None
    if kind_of(container) == MAP:
        found, value = map_lookup(container, name, label)
        if found:
            return value
        raise fail(label, "no such field")
    raise fail(label, f"{article(kind_of(container))} has no fields")


def has_field(container: Any, name: str, label: str) -> bool:
    """CEL ``has(container.name)``: is the key present in the map."""
    if type(container) is dict:
        return name in container
    if kind_of(container) == MAP:
        return map_lookup(container, name, label)[0]
    raise no_overload(label, "has()", container)


def iteration_items(value: Any, label: str) -> list[Any]:
    """What a comprehension macro ranges over: a list's elements or a map's keys."""
    kind = kind_of(value)
    if kind in (LIST, MAP):
        return list(value)
    raise fail(label, f"cannot range over {article(kind)}")
