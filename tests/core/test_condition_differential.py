"""Differential tests: compiled conditions against the reference CEL implementation.

The reference is the Rust ``cel`` library (``import cel``). For every case our result must equal
the reference result, or both must fail (an exception there; a ``ConditionError`` or
``ConditionEvaluationError`` here; a non-bool result counts as a failure on both sides, as it is
for a condition). Constants (``regions``) are passed to the reference as ordinary variables.

Each case also checks that the generated fast path and the exact closure tree agree, including
the error message, because the fast path only ever hands errors over to the closures.

Where the Rust library departs from the CEL spec (or lacks a function), we follow the spec; those
cases are listed in ``KNOWN_DEVIATIONS`` with our expected value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import cel
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.core.covenant.condition import CompiledCondition, compile_condition
from services.core.errors import ConditionError, ConditionEvaluationError

VARIABLES = frozenset({"data", "source", "type", "time"})
REGIONS = {"riec_nh": ["GM0361", "GM0362", "GM0363", "GM0392"], "amsterdam": ["GM0363"]}
ERROR: Final = "error"

ANOMALY: dict[str, Any] = {
    "ean": "871687120000000001",
    "address": {"street": "Damrak", "number": 1, "postcode": "1012LG", "city": "Amsterdam"},
    "municipality": "GM0363",
    "score": 0.87,
    "period": {"start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z", "days": 31},
    "kwh": 12000,
    "flags": ["night", "spike"],
    "readings": [10.5, 200.25, 3.0],
    "confirmed": True,
    "count": 3,
    "meta": {},
}
SIGNALS: list[dict[str, Any]] = [
    {
        "data": ANOMALY,
        "source": "liander",
        "type": "energy.anomaly",
        "time": datetime(2024, 3, 10, 23, 30, tzinfo=UTC),
    },
    {  # a low score from another municipality, with an integer score and no flags
        "data": {
            **{k: v for k, v in ANOMALY.items() if k != "flags"},
            "municipality": "GM0001",
            "score": 0,
            "count": 0,
            "confirmed": False,
            "address": {"street": "Markt", "number": 12, "postcode": "9711AA", "city": "Groningen"},
        },
        "source": "enexis",
        "type": "energy.anomaly",
        "time": datetime(2024, 7, 1, 8, 0, tzinfo=UTC),
    },
    {  # a malformed signal: wrong types everywhere, fields missing
        "data": {
            "ean": 871687120000000001,
            "municipality": None,
            "score": "0.9",
            "kwh": 12000.5,
            "flags": "night",
            "readings": [],
            "confirmed": 1,
            "count": -7,
            "address": "Damrak 1",
            "period": {"days": 0},
        },
        "source": "test",
        "type": "energy.anomaly",
        "time": datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
    },
]


def _exact_of(condition: CompiledCondition) -> Callable[[dict[str, Any]], bool]:
    """The exact closure tree behind a condition's generated fast path (or the evaluator
    itself, when nothing was inlined)."""
    evaluate = condition._evaluate
    exact: Callable[[dict[str, Any]], bool] = evaluate.__globals__.get("exact", evaluate)
    return exact


def reference(source: str, activation: dict[str, Any]) -> object:
    """The Rust library's outcome: a bool, or ERROR."""
    try:
        result = cel.evaluate(source, {**activation, "regions": REGIONS})
    except Exception:  # noqa: BLE001 - it signals CEL errors with many exception types
        return ERROR
    return result if isinstance(result, bool) else ERROR


def ours(source: str, activation: dict[str, Any]) -> object:
    """Our outcome, checking on the way that the fast path and the exact closures agree."""
    try:
        condition = compile_condition(source, variables=VARIABLES, constants={"regions": REGIONS})
    except ConditionError:
        return ERROR
    exact = _exact_of(condition)
    outcomes = []
    for evaluate in (condition, exact):
        try:
            outcomes.append(evaluate(activation))
        except ConditionEvaluationError as exc:
            outcomes.append(f"{ERROR}: {exc}")
    assert outcomes[0] == outcomes[1], f"fast path and closures disagree on {source!r}"
    return ERROR if isinstance(outcomes[0], str) else outcomes[0]


def assert_agrees(source: str, activation: dict[str, Any]) -> None:
    expected = reference(source, activation)
    actual = ours(source, activation)
    assert actual == expected, f"{source!r}: ours {actual!r}, reference {expected!r}"


EXPRESSIONS: Final = [
    # regions, scores and the usual anomaly rules
    "data.municipality in regions.riec_nh",
    "data.municipality in regions.riec_nh && data.score >= 0.8",
    "data.municipality in regions.amsterdam || data.score > 0.95",
    "!(data.municipality in regions.riec_nh) && data.score > 0.5",
    "data.score >= 0.8",
    "data.score > 1",
    "data.score <= 0.87",
    "data.score == 0.87",
    "data.score != 0",
    "data.score * 100.0 > 80.0",
    "data.score + 1 > 1",
    "int(data.score * 100.0) == 87",
    "double(data.kwh) / double(data.period.days) > 387.0",
    "data.kwh / data.period.days > 300",
    "data.kwh / data.period.days == 387",
    "data.kwh % 7 == 2",
    "data.kwh * 2 > 20000",
    "data.kwh - 12000 == 0",
    "data.kwh / 0 == 1",
    "data.kwh * 9223372036854775807 > 0",
    "data.count == 3",
    "data.count == 3.0",
    "data.count > 2.5",
    "data.count < 3u",
    "-data.count < 0",
    "data.count - 10 < 0",
    "data.count % 2 == 1",
    "data.count + 1u == 4u",
    "data.count + data.score > 3.0",
    "uint(data.count) == 3u",
    "string(data.count) == '3'",
    "string(data.score) == '0.87'",
    # booleans: bool is not an int
    "data.confirmed",
    "data.confirmed == true",
    "data.confirmed == 1",
    "data.confirmed != 1",
    "!data.confirmed",
    "data.confirmed in [1, 2]",
    "data.confirmed in [true]",
    "data.confirmed > false",
    # strings
    'data.ean == "871687120000000001"',
    "data.ean == 871687120000000001",
    'data.ean.startsWith("8716")',
    'data.ean.endsWith("001")',
    'data.ean.contains("8712")',
    'data.ean.matches("^8716[0-9]{14}$")',
    "size(data.ean) == 18 && data.ean.size() == 18",
    'data.ean < "9"',
    "data.ean < 9",
    'data.address.city == "Amsterdam"',
    'data.address.postcode.startsWith("10")',
    'data.address.city.matches("(?i)^amster")',
    "data.address.city.contains(data.address.street)",
    'source in ["liander", "stedin", "enexis"]',
    'type.startsWith("energy.") && source != "test"',
    'type + "/" + source == "energy.anomaly/liander"',
    # lists, maps, membership, indexing
    '"spike" in data.flags',
    '!("dip" in data.flags)',
    "size(data.flags) == 2",
    "data.flags.size() > 1",
    'data.flags[0] == "night"',
    'data.flags[5] == "x"',
    "data.readings[1] > 200.0",
    "3 in data.readings",
    "10.5 in data.readings",
    '"city" in data.address',
    '"country" in data.address',
    'data.address["city"] == "Amsterdam"',
    "data.address.number in [1, 2, 3]",
    "data.meta == {}",
    'data.flags == ["night", "spike"]',
    "data.readings == [10.5, 200.25, 3]",
    "[data.count, 4][0] == 3",
    '{"a": 1, "b": 2}["b"] == data.count - 1',
    # presence and missing fields
    "has(data.address.city)",
    "has(data.address.country)",
    "has(data.flags) && size(data.flags) > 0",
    "has(data.meta.x)",
    "data.nope == 1",
    "data.address.nope == 'x'",
    # error absorption of && and ||
    "data.nope == 1 || true",
    "true || data.nope == 1",
    "false && data.nope == 1",
    "data.nope == 1 && false",
    "data.nope == 1 && true",
    "data.nope == 1 || false",
    "data.score > 0.8 || data.nope.x == 1",
    "data.nope.x == 1 || data.score < 0.8",
    "data.count && true",
    "data.count || true",
    "false && data.count",
    "data.confirmed || data.nope",
    "data.count > 2 ? data.score > 0.5 : data.nope",
    "data.score > 0.9 ? true : data.count == 3",
    "data.nope ? true : false",
    "(data.score > 0.5 && data.count > 1) || data.confirmed == false",
    # macros
    "data.readings.exists(r, r > 100.0)",
    "data.readings.all(r, r > 1.0)",
    "data.readings.exists_one(r, r > 100.0)",
    "data.readings.filter(r, r > 5.0).size() == 2",
    "data.readings.map(r, r * 2.0)[1] == 400.5",
    'data.flags.exists(f, f.startsWith("sp"))',
    "data.flags.all(f, size(f) >= 5)",
    'data.address.exists(k, k == "city")',
    "[1, 2, 3].exists(x, x == data.count)",
    # timestamps and durations
    "timestamp(data.period.start) < timestamp(data.period.end)",
    'timestamp(data.period.end) - timestamp(data.period.start) == duration("744h")',
    'timestamp(data.period.start) + duration("24h") < timestamp(data.period.end)',
    "timestamp(data.period.start).getFullYear() == 2024",
    "timestamp(data.period.end).getDayOfYear() == 31",
    'time > timestamp("2024-01-01T00:00:00Z")',
    'time - duration("1h") < time',
    "time.getFullYear() == 2024 && time.getMonth() == 2",
    "time.getDayOfWeek() == 0 && time.getHours() == 23",
    'duration("90m") > duration("1h") && duration("90m").getMinutes() == 90',
]
assert len(EXPRESSIONS) >= 60


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_fixed_expressions_agree_with_reference(source: str) -> None:
    for activation in SIGNALS:
        assert_agrees(source, activation)


KNOWN_DEVIATIONS: Final = [
    # (expression, our result) -- the reference differs; we follow the CEL spec.
    # exists()/all() absorb errors like ||/&& do; the Rust library fails on the first error.
    ('data.flags.exists(f, f == "spike" || data.nope == f)', True),
    ("[0, 1].all(x, 1 / x == 2)", False),
    # size() of a string counts code points, not UTF-8 bytes.
    ('size("héllo") == 5', True),
    # Accessors use UTC unless a time zone is given (the Rust library keeps the offset).
    ('timestamp("2024-01-01T05:00:00+02:00").getHours() == 3', True),
    ('time.getHours("Europe/Amsterdam") == 0', True),
    # string() of timestamps and durations as in the CEL conformance tests.
    ('string(timestamp("2024-01-01T00:00:00Z")) == "2024-01-01T00:00:00Z"', True),
    ('string(duration("1h")) == "3600s"', True),
    # Spec functions the Rust library lacks.
    ('string(true) == "true"', True),
    ('timestamp(0) == timestamp("1970-01-01T00:00:00Z")', True),
    ('int(timestamp("1970-01-01T00:01:00Z")) == 60', True),
    ('matches(data.ean, "^8716")', True),
    # Map keys compare across int and uint.
    ('{1: "a"}[1u] == "a"', True),
    # Static type errors and always-failing constants are compile errors, even where && or ||
    # would absorb them at run time; repeated map keys are an error; int negation overflows.
    ("data.ean.startsWith(1) || true", ERROR),
    ("true || 1 / 0 == 1", ERROR),
    ('{"a": 1, "a": 2}.a == 2', ERROR),
    ("-(-9223372036854775808) < 0", ERROR),
]


@pytest.mark.parametrize(("source", "expected"), KNOWN_DEVIATIONS)
def test_known_deviations(source: str, expected: object) -> None:
    activation = SIGNALS[0]
    assert ours(source, activation) == expected
    assert reference(source, activation) != expected


# --- generated expressions ------------------------------------------------------------------

_WORDS: Final = st.text(alphabet="abcGM0123", max_size=5)
_SCALARS: Final = st.one_of(
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.booleans(),
    _WORDS,
    st.none(),
)


def _sometimes(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly ``values``, now and then a scalar of any type (to provoke type errors)."""
    return st.one_of(*[values] * 7, _SCALARS)


def _drop(data: dict[str, Any], missing: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in missing}


_ADDRESS: Final = st.builds(
    _drop,
    st.fixed_dictionaries(
        {
            "city": _sometimes(st.sampled_from(["Amsterdam", "Alkmaar", "Zaandam"])),
            "number": _sometimes(st.integers(0, 200)),
        }
    ),
    st.one_of(st.just(()), st.just(()), st.sampled_from(["city", "number"]).map(lambda k: (k,))),
)
_FIELDS: Final = {
    "score": _sometimes(st.floats(0, 1)),
    "count": _sometimes(st.integers(-50, 50)),
    "ean": _sometimes(st.text(alphabet="0123456789", max_size=18)),
    "municipality": _sometimes(st.sampled_from(["GM0361", "GM0363", "GM0001", "gm0363"])),
    "flags": _sometimes(st.lists(st.sampled_from(["night", "spike", "dip"]), max_size=4)),
    "confirmed": _sometimes(st.booleans()),
    "address": _sometimes(_ADDRESS),
}
DATA: Final = st.builds(
    _drop,
    st.fixed_dictionaries(_FIELDS),
    st.one_of(*[st.just(())] * 3, st.sampled_from(sorted(_FIELDS)).map(lambda k: (k,))),
)
ACTIVATIONS: Final = st.builds(
    lambda data, source: {"data": data, "source": source, "type": "energy.anomaly", "time": None},
    DATA,
    st.sampled_from(["liander", "stedin", "test"]),
)

INT_LITERALS: Final = st.integers(-20, 20).map(str)
DOUBLE_LITERALS: Final = st.floats(-100, 100, allow_nan=False).map(repr)
STRING_LITERALS: Final = _WORDS.map(json.dumps)
INT_TERMS: Final = st.sampled_from(
    ["data.count", "data.address.number", "size(data.flags)", "size(data.ean)"]
)
DOUBLE_TERMS: Final = st.just("data.score")
STRING_TERMS: Final = st.sampled_from(
    ["data.ean", "data.municipality", "data.address.city", "source", "data.flags[0]"]
)
ANY_TERMS: Final = st.one_of(INT_TERMS, DOUBLE_TERMS, STRING_TERMS, st.just("data.confirmed"))
ORDERINGS: Final = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])


def _arithmetic(
    terms: st.SearchStrategy[str], literals: st.SearchStrategy[str], operators: str
) -> st.SearchStrategy[str]:
    """Arithmetic where every operator has a data operand (so nothing folds to a constant)."""

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        op = st.sampled_from(list(operators))
        return st.one_of(
            st.tuples(inner, op, literals).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(literals, op, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
            st.tuples(inner, op, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        )

    return st.recursive(terms, extend, max_leaves=4)


INT_EXPRESSIONS: Final = _arithmetic(INT_TERMS, INT_LITERALS, "+-*/%")
DOUBLE_EXPRESSIONS: Final = _arithmetic(DOUBLE_TERMS, DOUBLE_LITERALS, "+-*/")
# Mixed int/double arithmetic is a run-time error; only untyped terms mix, so it stays one.
MIXED_EXPRESSIONS: Final = st.tuples(
    st.sampled_from(["data.count", "data.address.number"]),
    st.sampled_from(list("+-*/")),  # `%` has no double overload: a compile error with a literal
    st.one_of(DOUBLE_LITERALS, DOUBLE_TERMS),
).flatmap(lambda t: st.sampled_from([f"({t[0]} {t[1]} {t[2]})", f"({t[2]} {t[1]} {t[0]})"]))
NUMBERS: Final = st.one_of(INT_EXPRESSIONS, DOUBLE_EXPRESSIONS, MIXED_EXPRESSIONS)
STRINGS: Final = st.one_of(
    STRING_TERMS,
    st.tuples(STRING_TERMS, STRING_LITERALS).map(lambda t: f"({t[0]} + {t[1]})"),
)


def _join(parts: tuple[str, ...], template: str) -> str:
    return template.format(*parts)


PREDICATES: Final = st.one_of(
    st.tuples(NUMBERS, ORDERINGS, st.one_of(INT_LITERALS, DOUBLE_LITERALS, NUMBERS)).map(
        lambda t: _join(t, "{} {} {}")
    ),
    st.tuples(STRINGS, ORDERINGS, st.one_of(STRING_LITERALS, STRINGS)).map(
        lambda t: _join(t, "{} {} {}")
    ),
    st.tuples(ANY_TERMS, ORDERINGS, ANY_TERMS).map(lambda t: _join(t, "{} {} {}")),
    st.tuples(
        STRINGS, st.sampled_from(["startsWith", "endsWith", "contains"]), STRING_LITERALS
    ).map(lambda t: _join(t, "{}.{}({})")),
    st.tuples(STRINGS, st.sampled_from(['"^[a-c]+$"', '"G"', '"[0-9]{2}"'])).map(
        lambda t: _join(t, "{}.matches({})")
    ),
    st.tuples(STRINGS, st.sampled_from(["regions.riec_nh", '["GM0363", "a"]'])).map(
        lambda t: _join(t, "{} in {}")
    ),
    st.tuples(NUMBERS, st.sampled_from(["[1, 2, 3]", "[0.5, 3.0]", "[1, 'a', true]"])).map(
        lambda t: _join(t, "{} in {}")
    ),
    st.tuples(STRING_LITERALS).map(lambda t: _join(t, "{} in data.flags")),
    st.sampled_from(['"city" in data.address', "data.confirmed", "!data.confirmed"]),
    st.sampled_from(["data.score", "data.flags", "data.address", "data.address.city"]).map(
        lambda path: f"has({path})"
    ),
    st.tuples(st.sampled_from(["exists", "all", "exists_one", "filter"]), STRING_LITERALS).map(
        lambda t: (
            _join(t, "data.flags.{}(f, f == {})") + (".size() > 0" if t[0] == "filter" else "")
        )
    ),
)


def _logic(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
            lambda t: _join(t, "({} {} {})")
        ),
        inner.map(lambda e: f"!({e})"),
        st.tuples(inner, inner, inner).map(lambda t: _join(t, "({} ? {} : {})")),
    )


CONDITIONS: Final = st.recursive(PREDICATES, _logic, max_leaves=6)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(source=CONDITIONS, activation=ACTIVATIONS)
def test_generated_conditions_agree_with_reference(source: str, activation: dict[str, Any]) -> None:
    assert_agrees(source, activation)


# --- every operator on every pair of representative values ----------------------------------

SAMPLES: Final[list[Any]] = [
    0,
    3,
    -7,
    2**63 - 1,
    -(2**63),
    0.0,
    -0.0,
    2.5,
    -1.5,
    1e308,
    True,
    False,
    "",
    "ab",
    None,
    [1, 2],
    {"a": 1},
]
VALUE_OPERATORS: Final = ["+", "-", "*", "/", "%"]
BOOL_OPERATORS: Final = ["<", "<=", ">", ">=", "==", "!=", "in"]


def _literal(value: Any) -> str | None:
    """``value`` as a CEL literal, where it has one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    return None


class _Both:
    """One condition compiled both ways (fast path and exact closures), or its compile error."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.fast: Any = compile_condition(source, variables=VARIABLES)
        except ConditionError:
            self.fast = None
            return
        self.exact = _exact_of(self.fast)

    def __call__(self, activation: dict[str, Any]) -> object:
        if self.fast is None:
            return ERROR
        outcomes = []
        for evaluate in (self.fast, self.exact):
            try:
                outcomes.append(evaluate(activation))
            except ConditionEvaluationError as exc:
                outcomes.append(f"{ERROR}: {exc}")
        assert outcomes[0] == outcomes[1], f"fast path and closures disagree on {self.source!r}"
        return ERROR if isinstance(outcomes[0], str) else outcomes[0]


def _check_operator(expression: str, activation: dict[str, Any], value_op: bool) -> None:
    """``expression`` agrees with the reference; values are compared through ``==``."""
    try:
        expected = cel.evaluate(expression, activation)
    except Exception:  # noqa: BLE001 - it signals CEL errors with many exception types
        expected = ERROR
    data = activation["data"]
    if (
        expression.startswith("data.a + ")
        and isinstance(data["a"], list)
        and isinstance(data["b"], dict)
    ):
        expected = ERROR  # the Rust library appends a map's keys to a list; CEL has no list + map
    if not value_op:
        actual = _compiled(expression)(activation)
        assert actual == expected, f"{expression} on {activation['data']}: {actual!r}"
    elif expected == ERROR:
        assert _compiled(f"({expression}) == data.a")(activation) == ERROR, expression
    elif isinstance(expected, float) and math.isnan(expected):
        assert _compiled(f"({expression}) != ({expression})")(activation) is True, expression
    else:
        checked = {**activation, "data": {**activation["data"], "expected": expected}}
        actual = _compiled(f"({expression}) == data.expected")(checked)
        assert actual is True, f"{expression} on {activation['data']}: {expected!r}"


_CACHE: dict[str, _Both] = {}


def _compiled(source: str) -> _Both:
    if source not in _CACHE:
        _CACHE[source] = _Both(source)
    return _CACHE[source]


@pytest.mark.parametrize("op", VALUE_OPERATORS + BOOL_OPERATORS)
def test_operator_table_agrees_with_reference(op: str) -> None:
    """Each operator on each pair of samples, with the right operand from data and as a
    literal (which takes the specialised code paths)."""
    value_op = op in VALUE_OPERATORS
    for right in SAMPLES:
        forms = ["data.b"]
        literal = _literal(right)
        if literal is not None:
            forms.append(literal)
        for form in forms:
            for left in SAMPLES:
                activation = {
                    "data": {"a": left, "b": right},
                    "source": "",
                    "type": "",
                    "time": None,
                }
                _check_operator(f"data.a {op} {form}", activation, value_op)
