"""Unit tests of covenant conditions: the CEL subset, compile errors, evaluation errors,
references, constant folding and the guards against hostile input."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from services.core.covenant.cel_ast import MAX_DEPTH, MAX_SOURCE_LENGTH
from services.core.covenant.cel_values import UInt
from services.core.covenant.condition import CompiledCondition, compile_condition
from services.core.errors import ConditionError, ConditionEvaluationError

VARIABLES = frozenset({"data", "source", "type", "time"})
REGIONS = {"riec_nh": ["GM0361", "GM0362", "GM0363"], "amsterdam": ["GM0363"]}
SECRET = "871687120000000001"  # an EAN: must never show up in an error message

SIGNAL: dict[str, Any] = {
    "data": {
        "ean": SECRET,
        "address": {"street": "Damrak", "number": 1, "postcode": "1012LG", "city": "Amsterdam"},
        "municipality": "GM0363",
        "score": 0.87,
        "period": {"start": "2024-01-01T00:00:00Z", "end": "2024-02-01T00:00:00Z"},
        "kwh": 12000,
        "days": 31,
        "flags": ["night", "spike"],
        "readings": [10.5, 200.25, 3.0],
        "confirmed": True,
        "count": 3,
        "meta": {},
        "note": None,
        "counts": [[1, 2], [3]],
    },
    "source": "liander",
    "type": "energy.anomaly",
    "time": datetime(2024, 3, 10, 23, 30, tzinfo=UTC),
}


def compile_(source: str, **constants: Any) -> CompiledCondition:
    return compile_condition(
        source, variables=VARIABLES, constants=constants or {"regions": REGIONS}
    )


def run(source: str, activation: dict[str, Any] | None = None) -> bool:
    return compile_(source)(SIGNAL if activation is None else activation)


def with_data(**data: Any) -> dict[str, Any]:
    return {**SIGNAL, "data": data}


def eval_error(source: str, activation: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConditionEvaluationError) as info:
        run(source, activation)
    message = str(info.value)
    assert SECRET not in message
    return message


def compile_error(source: str) -> ConditionError:
    with pytest.raises(ConditionError) as info:
        compile_(source)
    return info.value


# --- literals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "1 == 1",
        "0x1F == 31",
        "-0x10 == -16",
        "-9223372036854775808 < 0",
        "9223372036854775807 > 0",
        "1u == 1",
        "18446744073709551615u > 0u",
        "1.5 == 1.5",
        ".5 == 0.5",
        "1e3 == 1000.0",
        "2.5e-1 == 0.25",
        "true != false",
        "null == null",
        '"a\\tb".size() == 3',
        '"\\x41\\101\\u0041\\U00000041" == "AAAA"',
        '"\\u00e9" == "é"',
        "'it\\'s' == \"it's\"",
        '"\\"" == \'"\'',
        'r"\\d+" == "\\\\d+"',
        '"""two\nlines""".size() == 9',
        "'''x''' == \"x\"",
        'b"abc" == b"abc"',
        'b"\\xff".size() == 1',
        'b"é".size() == 2',
        "[1, 2, 3] == [1, 2, 3]",
        "[] == []",
        '{"a": 1, "b": [2]} == {"b": [2], "a": 1}',
        "{1: 'x', 2: 'y'}[2] == 'y' && {true: 'x'}[true] == 'x'",
    ],
)
def test_literals(source: str) -> None:
    assert run(source) is True


@pytest.mark.parametrize(
    ("source", "column"),
    [
        ("9223372036854775808 > 0", 1),
        ("18446744073709551616u > 0u", 1),
        ('"\\q" == "q"', 2),
        ('data.ean == "ok" || "\\u12" == ""', 22),
        ('"\\ud800" == ""', 2),
        ('b"\\u0041" == b"A"', 3),
    ],
)
def test_invalid_literals_are_compile_errors(source: str, column: int) -> None:
    assert compile_error(source).column == column


# --- field access, indexing, membership -----------------------------------------------------


def test_field_selection_and_indexing() -> None:
    assert run('data.address.city == "Amsterdam"')
    assert run('data["address"]["city"] == "Amsterdam"')
    assert run('data.flags[0] == "night" && data.readings[1] == 200.25')
    assert run("data.flags[1u] == 'spike'")
    assert run('{"a": {"b": [1, {"c": 2}]}}.a.b[1].c == 2')


def test_missing_field_is_an_error_naming_the_path() -> None:
    message = eval_error("data.nope == 1")
    assert "data.nope" in message
    assert "data.address.country" in eval_error('data.address.country == "NL"')
    assert "data.ean.x" in eval_error("data.ean.x == 1")  # a string has no fields


def test_index_errors() -> None:
    assert "out of range" in eval_error('data.flags[5] == "x"')
    assert "out of range" in eval_error('data.flags[-1] == "spike"')  # no Python negative indexing
    assert "no such overload" in eval_error('data.flags[1.0] == "spike"')
    assert "missing field data.address.country" in eval_error('data.address["country"] == "NL"')
    assert "no such key" in eval_error('data.address[data.ean] == "NL"')
    assert "no such overload" in eval_error("data.ean[0] == '8'")


def test_missing_variable_is_an_error() -> None:
    condition = compile_('source == "liander"')
    with pytest.raises(ConditionEvaluationError, match="variable 'source' is not provided"):
        condition({"data": {}})


def test_membership() -> None:
    assert run('"spike" in data.flags')
    assert not run('"dip" in data.flags')
    assert run('"city" in data.address')
    assert not run('"country" in data.address')
    assert run("3 in [1, 2, 3] && 3.0 in [1, 2, 3] && 3 in [3.0]")
    assert run('source in ["liander", "stedin"] && !(source in ["test"])')
    assert run("data.count in {3: 'x'}")
    assert "no such overload" in eval_error('"a" in data.ean')
    assert "map key" in eval_error("data.score in {1: 'a'}")


# --- arithmetic -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "data.kwh / data.days == 387",
        "-7 / 2 == -3",
        "7 / -2 == -3",
        "-7 % 2 == -1",
        "7 % -2 == 1",
        "data.kwh % 7 == 2",
        "data.kwh * 2 - 4000 == 20000",
        "data.count + 1 == 4",
        "data.score * 100.0 > 86.9",
        "data.score / 0.0 > 1e308",
        "-data.score / 0.0 < -1e308",
        "0.0 / 0.0 != 0.0 / 0.0",
        "data.count - 10 == -7",
        "-data.count == -3",
        "5u / 2u == 2u && 5u % 2u == 1u && 2u * 3u == 6u && 3u - 1u == 2u",
        '"ab" + "cd" == "abcd" && b"a" + b"b" == b"ab"',
        'data.flags + ["x"] == ["night", "spike", "x"]',
        "9223372036854775807 - data.count > 0",
    ],
)
def test_arithmetic(source: str) -> None:
    assert run(source) is True


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("data.kwh / 0 == 1", "division by zero"),
        ("data.kwh % 0 == 1", "modulo by zero"),
        ("data.kwh * 9223372036854775807 > 0", "overflow"),
        ("-9223372036854775807 - data.count < 0", "overflow"),
        ("data.count + data.score > 1.0", "no such overload"),
        ("data.count / data.score > 1.0", "no such overload"),
        ("data.score / data.count > 1.0", "no such overload"),
        ("data.count / data.ean > 1", "no such overload"),
        ("data.count * data.score > 1.0", "no such overload"),
        ("data.count + 1u > 1u", "no such overload"),
        ("data.score % data.score == 0.0", "no such overload"),
        ("uint(data.count) - 4u == 0u", "overflow"),
        ("data.ean - 1 == 0", "no such overload"),
    ],
)
def test_arithmetic_errors(source: str, reason: str) -> None:
    assert reason in eval_error(source)


# --- comparisons and equality ---------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "data.score >= 0.8",
        "data.count > 2.5",
        "data.count < 3.5",
        "data.count == 3.0",
        "data.count <= 3u",
        "1 < data.score + 1.0",
        '"Amsterdam" > "Alkmaar"',
        "data.flags[0] < data.flags[1]",
        "b'a' < b'b'",
        "false < true",
        "duration('90m') > duration('1h')",
        "timestamp(data.period.start) < timestamp(data.period.end)",
        'data.ean != 871687120000000001 && data.ean == "871687120000000001"',
        "data.address == {'street': 'Damrak', 'number': 1.0, 'postcode': '1012LG',"
        " 'city': 'Amsterdam'}",
        "data.readings == [10.5, 200.25, 3]",
        "data.meta == {} && data.flags != []",
        "[1, 'a'] != [1, 'b']",
    ],
)
def test_comparisons(source: str) -> None:
    assert run(source) is True


@pytest.mark.parametrize(
    "source",
    [
        "data.ean < 1",
        'data.score < "1"',
        "data.flags < data.flags",
        "data.note < data.note",
        "data.confirmed < 1",
        "data.meta > data.meta",
    ],
)
def test_ordering_across_types_is_an_error(source: str) -> None:
    assert "no such overload" in eval_error(source)


def test_bool_is_not_an_int() -> None:
    """Python makes bool a subclass of int; CEL keeps them apart."""
    assert run("data.confirmed == true")
    assert not run("data.confirmed == 1")
    assert run("data.confirmed != 1")
    assert not run("true == 1")
    assert not run("false == 0")
    assert not run("data.confirmed in [1, 2]")
    assert run("data.confirmed in [true]")
    assert not run("1 in [true]")
    assert not run("data.count in [true, false]")
    assert not run("[true] == [1]")
    assert not run('{"a": true} == {"a": 1}')
    assert not run("data.confirmed in {1: 'one'}")
    assert not run("1 in {true: 'yes'}")
    assert run("{true: 'yes'}[true] == 'yes'")
    assert "no such key" in eval_error("{1: 'one'}[data.confirmed] == 'one'")
    assert "no such overload" in eval_error("data.confirmed + 1 == 2")
    assert "no such overload" in eval_error("data.confirmed > 0")
    assert not run("data.flag == 1", with_data(flag=True))
    assert run("data.flag == 1", with_data(flag=1))
    assert not run("data.n == true", with_data(n=1))


# --- logic ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("false && data.nope == 1", False),
        ("data.nope == 1 && false", False),
        ("true || data.nope == 1", True),
        ("data.nope == 1 || true", True),
        ("data.nope.x == 1 || data.score > 0.8", True),
        ("data.score > 0.8 || data.nope.x == 1", True),
        ("data.count && false", False),
        ("false && data.count", False),
        ("data.count || true", True),
        ("data.nope == 1 && data.ean == 'x' && false", False),
        ("data.nope == 1 || data.count || data.confirmed", True),
        ("!(data.score < 0.5) && !false", True),
        ("data.score > 0.8 ? data.count == 3 : data.nope", True),
        ("data.score < 0.8 ? data.nope : data.count == 3", True),
    ],
)
def test_logical_operators_absorb_errors(source: str, expected: bool) -> None:
    assert run(source) is expected


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("data.nope == 1 && true", "data.nope"),
        ("true && data.nope == 1", "data.nope"),
        ("data.nope == 1 || false", "data.nope"),
        ("false || data.nope == 1", "data.nope"),
        ("data.count && true", "expected a bool"),
        ("true && data.count", "expected a bool"),
        ("data.count || false", "expected a bool"),
        ("data.nope == 1 || data.count || false", "data.nope"),
        ("!data.count", "no such overload"),
        ("data.count ? true : false", "expected a bool"),
        ("data.nope ? true : false", "data.nope"),
    ],
)
def test_logical_operator_errors(source: str, fragment: str) -> None:
    assert fragment in eval_error(source)


def test_result_must_be_a_bool() -> None:
    assert "not a bool" in eval_error("data.count")
    assert "not a bool" in eval_error("data.score > 0.5 ? data.count : true")
    assert compile_error("1 + 2").column == 1
    assert "must be a bool" in compile_error('"yes"').message


# --- functions and macros -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "has(data.address.city) && !has(data.address.country) && !has(data.meta.x)",
        "has(data.ean)",
        "size(data.flags) == 2 && data.flags.size() == 2",
        "size(data.ean) == 18 && data.ean.size() == 18",
        "size(data.address) == 4 && size(b'ab') == 2",
        "size('héllo') == 5",
        'data.ean.startsWith("8716") && data.ean.endsWith("001") && data.ean.contains("8712")',
        'data.ean.matches("^8716[0-9]{14}$")',
        'data.address.city.matches("(?i)^AMSTER")',
        'matches(data.address.city, "dam$")',
        "data.address.city.startsWith(data.address.city)",
        'int("42") == 42 && int("-7") == -7 && int(3.9) == 3 && int(-3.9) == -3',
        'int(2u) == 2 && uint(3) == 3u && uint("7") == 7u && uint(2.5) == 2u',
        'double(3) == 3.0 && double("0.5") == 0.5 && double(2u) == 2.0 && double("1e3") == 1000.0',
        'string(3) == "3" && string(2u) == "2" && string(true) == "true"',
        'string(0.87) == "0.87" && string(1.0) == "1" && string(1e20) == "100000000000000000000"',
        'string(b"abc") == "abc" && bytes("é") == b"\\xc3\\xa9"',
        'dyn(data.count) == 3 && dyn("a") == "a"',
        "int(data.score * 100.0) == 87",
    ],
)
def test_functions(source: str) -> None:
    assert run(source) is True


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('int(data.ean + "x") == 1', "not an integer"),
        ('int(" " + data.ean) == 5', "not an integer"),
        ('double(data.ean + "_0") == 1000.0', "not a number"),
        ("int(data.score * 1e300) == 1", "overflow"),
        ("uint(-data.count) == 1u", "overflow"),
        ("size(data.count) == 1", "no such overload"),
        ("data.count.startsWith('1')", "no such overload"),
        ('string(bytes(data.ean) + b"\\xff") == ""', "UTF-8"),
        ("data.address.city.matches(data.ean + '[')", "invalid RE2 pattern"),
        ("has(data.ean.x)", "no such overload"),
        ("has(data.nope.x)", "data.nope"),
    ],
)
def test_function_errors(source: str, reason: str) -> None:
    assert reason in eval_error(source)


def test_matches_uses_re2_which_cannot_backtrack_catastrophically() -> None:
    condition = compile_condition('data.s.matches("^(a+)+$")', variables=VARIABLES)
    started = time.perf_counter()
    assert condition({"data": {"s": "a" * 50_000 + "b"}}) is False
    assert time.perf_counter() - started < 1.0


def test_timestamps_and_durations() -> None:
    assert run('time > timestamp("2024-03-10T00:00:00Z")')
    assert run('time - timestamp("2024-03-10T23:00:00Z") == duration("30m")')
    assert run('time + duration("30m") == timestamp("2024-03-11T00:00:00Z")')
    assert run('duration("1h30m") == duration("90m") && duration("-1.5h") < duration("0s")')
    assert run('duration("1s") + duration("500ms") == duration("1.5s")')
    assert run('timestamp("2024-01-01T01:00:00+01:00") == timestamp("2024-01-01T00:00:00Z")')
    assert run("timestamp(0) == timestamp('1970-01-01T00:00:00Z')")
    assert run("int(timestamp('1970-01-01T00:01:00Z')) == 60")
    assert run('string(timestamp("2024-01-01T00:00:00.5+01:00")) == "2023-12-31T23:00:00.5Z"')
    assert run('string(duration("1h")) == "3600s" && string(duration("-1.25s")) == "-1.25s"')
    assert run(
        "time.getFullYear() == 2024 && time.getMonth() == 2 && time.getDate() == 10"
        " && time.getDayOfMonth() == 9 && time.getDayOfWeek() == 0 && time.getDayOfYear() == 69"
        " && time.getHours() == 23 && time.getMinutes() == 30 && time.getSeconds() == 0"
        " && time.getMilliseconds() == 0"
    )
    # Accessors use UTC unless a time zone is given (IANA name or fixed offset).
    assert run('time.getHours("Europe/Amsterdam") == 0 && time.getDate("Europe/Amsterdam") == 11')
    assert run('time.getHours("+02:00") == 1 && time.getHours("-01:30") == 22')
    local = {**SIGNAL, "time": datetime(2024, 1, 1, 5, tzinfo=timezone(timedelta(hours=2)))}
    assert run("time.getHours() == 3", local)
    assert run(
        'duration("90m").getHours() == 1 && duration("90m").getMinutes() == 90'
        ' && duration("1.5s").getSeconds() == 1 && duration("1.5s").getMilliseconds() == 1500'
    )


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("timestamp(data.ean) > time", "RFC 3339"),
        ('timestamp(data.period.start + "x") > time', "RFC 3339"),
        ("duration(data.ean) > duration('1s')", "duration"),
        ("time.getHours(data.ean) == 1", "unknown time zone"),
        ("time + duration('1h') > data.count", "no such overload"),
        ("time - 1 > time", "no such overload"),
    ],
)
def test_timestamp_errors(source: str, reason: str) -> None:
    assert reason in eval_error(source)


def test_naive_datetime_is_an_error() -> None:
    naive = {**SIGNAL, "time": datetime(2024, 1, 1)}
    assert "time zone" in eval_error('time > timestamp("2023-01-01T00:00:00Z")', naive)


@pytest.mark.parametrize(
    "source",
    [
        "data.readings.exists(r, r > 100.0)",
        "!data.readings.exists(r, r > 1000.0)",
        "data.readings.all(r, r > 1.0)",
        "!data.readings.all(r, r > 5.0)",
        "data.readings.exists_one(r, r > 100.0)",
        "!data.readings.exists_one(r, r > 5.0)",
        "data.readings.filter(r, r > 5.0) == [10.5, 200.25]",
        "data.readings.map(r, int(r)) == [10, 200, 3]",
        "data.readings.map(r, r > 5.0, r * 2.0) == [21.0, 400.5]",
        'data.flags.exists(f, f.startsWith("sp")) && data.flags.all(f, size(f) >= 5)',
        'data.address.exists(k, k == "city") && data.address.all(k, size(k) >= 4)',
        "regions.riec_nh.exists(code, code == data.municipality)",
        "[1, 2, 3].map(x, [x, x * 10].filter(y, y > 2)) == [[10], [20], [3, 30]]",
        "data.flags.exists(source, source == 'spike')",  # the macro variable shadows a variable
        # a map literal runs as a closure: it must see the macro variable, not the signal's source
        "data.flags.exists(source, {'k': source}.k == 'spike')",
        "!data.flags.exists(source, {'k': source}.k == 'liander')",
        "data.readings.map(r, {'v': r}.v) == data.readings",
        # the inner predicate reads the outer variable
        "data.counts.exists(xs, xs.all(x, x > size(xs)))",
        "!data.flags.all(f, data.flags.exists(g, g != f && g.startsWith(f)))",
        "[].all(x, x > 1) && ![].exists(x, x > 1)",
    ],
)
def test_macros(source: str) -> None:
    assert run(source) is True


def test_comprehensions_over_other_sequences() -> None:
    assert run("data.t.exists(x, x == 2) && data.t.all(x, x > 0)", with_data(t=(1, 2)))
    assert run("data.t.map(x, x * 2) == [2, 4]", with_data(t=(1, 2)))
    assert run("data.m.filter(k, k.startsWith('a')) == ['ab']", with_data(m={"ab": 1, "b": 2}))


def test_all_and_exists_absorb_errors_like_and_and_or() -> None:
    assert run("[0, 1].all(x, 1 / x == 2)") is False  # false wins over the error for x == 0
    assert run('data.flags.exists(f, f == "spike" || data.nope == f)') is True
    assert "division by zero" in eval_error("[1, data.count - 3].all(x, 1 / x == 1)")
    assert "division by zero" in eval_error("[data.count - 3, 2].exists(x, 2 / x == 2)")
    assert "expected a bool" in eval_error("data.readings.exists(r, r)")
    assert "division by zero" in eval_error("[data.count - 3, 1].exists_one(x, 1 / x == 1)")
    assert "cannot range over" in eval_error("data.count.exists(x, x > 1)")


# --- compile errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment", "column"),
    [
        ("data.score >", "ends too early", 13),
        ("data.score > > 1", "unexpected", 14),
        ("data.score > 0.8 &&& true", "unexpected", 20),
        ('data.ean == "unterminated', "unexpected character", 13),
        ("", "ends too early", 1),
        ("data.x == 1\n && nope == 2", "unknown identifier 'nope'", 17),
        ("nope == 1", "unknown identifier 'nope'", 1),
        ("frobnicate(data.x)", "unknown function 'frobnicate'", 1),
        ("data.x.frobnicate()", "unknown function 'frobnicate'", 1),
        ("data.ean in regions.nope", "unknown region 'nope'", 21),
        ('data.ean in regions["nope"]', "unknown region 'nope'", 21),
        ("regions.riec_nh.x == 1", "has no members", 1),
        ('1 + "a" == 2', "no such overload", 1),
        ('data.count > 1 && size(data.flags) + "a" == ""', "no such overload", 19),
        ("size(1) == 1", "size() needs", 1),
        ("data.ean.startsWith(1)", "needs a string argument", 21),
        ('"abc".startsWith(data.x)', "", None),
        ("!1", "'!' needs a bool", 1),
        ("data.x > 1 && 5", "needs bool operands", 15),
        ("1 ? true : false", "must be a bool", 1),
        ("data.x in 5", "no such overload", 1),
        ("data.x < []", "no such overload", 1),
        ("data.ean.matches('[')", "invalid RE2 pattern", 18),
        ("1 / 0 == 1", "division by zero", 1),
        ('int("x") == 1', "not an integer", 1),
        ('timestamp("yesterday") < time', "RFC 3339", 1),
        ('time.getHours("Mars/Olympus") == 1', "unknown time zone", 15),
        ("has(data)", "has() takes one field selection", 1),
        ("has(data['x'])", "has() takes one field selection", 1),
        ("data.x.has(y)", "is not a method", 1),
        ("startsWith(data.x, 'a')", "is a method", 1),
        ("data.x.exists(1, true)", "variable name", 15),
        ("data.x.exists(x)", "takes 2 argument(s)", 1),
        ("Msg{field: 1} == 1", "message construction", 5),
        (".data == 1", "leading-dot", 1),
        ("type(data.x) == int", "unknown function 'type'", 1),
        ("{'a': 1, 'a': 2}.a == 1", "repeated map key", 1),
        ("{1.5: 'x'} == {}", "map key must be", 2),
        ("data.l.all(a, a.all(b, b.all(c, c)))", "nest more than 2 deep", 24),
        ("false && nope == 1", "unknown identifier 'nope'", 10),
        ("data.score % 2.0 == 1.0", "no such overload", 1),
    ],
)
def test_compile_errors(source: str, fragment: str, column: int | None) -> None:
    if not fragment:  # compiles: the argument's type is only known at run time
        compile_(source)
        return
    error = compile_error(source)
    assert fragment in error.message
    assert error.column == column


def test_unknown_region_message() -> None:
    error = compile_error("data.municipality in regions.nope")
    assert error.message.startswith("unknown region 'nope'")
    assert "riec_nh" in error.message


def test_source_length_and_nesting_limits() -> None:
    assert "limit is 4000" in compile_error("true || " * 600 + "true").message
    assert len("data.x == 1 || " * 266 + "true") <= MAX_SOURCE_LENGTH
    deep = "(" * 1000 + "data.x" + ")" * 1000 + " == 1"  # parentheses alone add no depth
    assert compile_(deep)({"data": {"x": 1}}) is True
    for source in [
        "!" * 500 + "true",
        "-" * 500 + "1 == -1",
        "[" * 200 + "]" * 200 + " == []",
        " + ".join(["data.x"] * (MAX_DEPTH + 5)) + " > 0",
        "data" + ".a" * (MAX_DEPTH + 5) + " == 1",
    ]:
        assert "nested too deeply" in compile_error(source).message


def test_long_logical_chains_do_not_recurse() -> None:
    """``&&``/``||`` chains are flattened: evaluating them needs no deep Python recursion."""
    source = " || ".join(["data.x == 1"] * 260)
    condition = compile_(source)
    assert condition({"data": {"x": 1}}) is True
    assert condition({"data": {"x": 2}}) is False
    with pytest.raises(ConditionEvaluationError, match=r"data\.x"):
        condition({"data": {}})


# --- references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "references"),
    [
        (
            "data.municipality in regions.riec_nh && data.score >= 0.8",
            {"data.municipality", "data.score"},
        ),
        ("has(data.address.city) && data.flags[0] == 'x'", {"data.address.city", "data.flags"}),
        ('data["address"]["city"] == "x"', {"data.address.city"}),
        ("data.items.exists(i, i.score > data.min)", {"data.items", "data.min"}),
        ('source == "x" && type.startsWith("energy")', {"source", "type"}),
        ("size(data) > 0 && time > timestamp('2024-01-01T00:00:00Z')", {"data", "time"}),
        ("false && data.never == 1", {"data.never"}),
        ("regions.riec_nh.size() > 0", set()),
    ],
)
def test_references(source: str, references: set[str]) -> None:
    assert compile_(source).references == frozenset(references)


# --- constants ------------------------------------------------------------------------------


def _bound_values(condition: CompiledCondition) -> list[Any]:
    evaluate = condition._evaluate  # the generated fast path keeps its bound values as globals
    return list(evaluate.__globals__.values())


def test_constant_list_membership_becomes_a_frozenset() -> None:
    condition = compile_("data.municipality in regions.riec_nh")
    assert frozenset(REGIONS["riec_nh"]) in _bound_values(condition)
    assert condition(SIGNAL) is True
    assert condition(with_data(municipality="GM0001")) is False
    assert condition(with_data(municipality=363)) is False


def test_constants_are_folded_and_copied() -> None:
    regions = {"riec_nh": ["GM0363"]}
    condition = compile_condition(
        "data.municipality in regions.riec_nh && size(regions.riec_nh) == 1",
        variables=VARIABLES,
        constants={"regions": regions},
    )
    regions["riec_nh"].append("GM0001")  # changing the caller's objects changes nothing
    assert condition({"data": {"municipality": "GM0363"}}) is True
    assert condition({"data": {"municipality": "GM0001"}}) is False
    assert condition.references == frozenset({"data.municipality"})


def test_constant_sets_and_mixed_lists() -> None:
    constants = {"codes": frozenset({"b", "a"}), "mixed": [1, "a", True, None, 2.5, [1]]}

    def check(source: str) -> bool:
        return compile_condition(source, variables=VARIABLES, constants=constants)(SIGNAL)

    assert check("codes == ['a', 'b']")
    assert check("1 in mixed && 1.0 in mixed && 'a' in mixed && true in mixed && null in mixed")
    assert check("2.5 in mixed && [1] in mixed && [1.0] in mixed")
    assert not check("false in mixed")
    assert not check("2 in mixed")
    assert not check("'b' in mixed")


def test_invalid_constants_are_rejected() -> None:
    with pytest.raises(ConditionError, match="constant 'bad'"):
        compile_condition("true", variables=VARIABLES, constants={"bad": object()})
    with pytest.raises(ConditionError, match="constant 'bad'"):
        compile_condition("true", variables=VARIABLES, constants={"bad": {1.5: "x"}})
    with pytest.raises(ConditionError, match="both a variable and a constant"):
        compile_condition("true", variables=VARIABLES, constants={"data": {}})


# --- errors never carry values, and the evaluator stays in its lane --------------------------


@pytest.mark.parametrize(
    "source",
    [
        "data.ean < 1",
        "data.ean + 1 == 2",
        "int(data.ean + 'x') == 1",
        "data.ean.nope == 1",
        "data.ean[0] == '8'",
        "data.ean",
        "data.ean ? true : false",
        "timestamp(data.ean) > time",
        "data.ean.matches(data.ean + '(')",
        "{data.ean: 1, data.ean: 2}.size() == 2",
        "[data.ean].all(e, e > 1)",
    ],
)
def test_evaluation_errors_never_contain_data_values(source: str) -> None:
    eval_error(source)  # asserts the EAN is absent


def test_no_python_attribute_access() -> None:
    assert "data.__class__" in eval_error("data.__class__ == 1")
    assert "unknown function" in compile_error("data.ean.upper() == 'X'").message
    assert "unknown function" in compile_error("data.__len__() == 1").message

    class Sneaky:
        secret = 1

    assert "data.obj" in eval_error("data.obj.secret == 1", with_data(obj=Sneaky()))
    assert "no CEL type" in eval_error("data.obj < 1", with_data(obj=Sneaky()))


def test_unexpected_python_values_become_evaluation_errors() -> None:
    assert "no CEL type" in eval_error("size(data.s) == 1", with_data(s={1, 2}))
    assert "no CEL type" in eval_error("data.s == [1]", with_data(s={1, 2}))


def test_compiled_condition_is_a_frozen_value() -> None:
    condition = compile_("data.score > 0.5")
    assert condition.source == "data.score > 0.5"
    assert condition == compile_("data.score > 0.5")
    assert "_evaluate" not in repr(condition)
    with pytest.raises(dataclasses.FrozenInstanceError):
        condition.source = "true"  # type: ignore[misc]


def test_uint_values_are_distinct_from_ints() -> None:
    assert run("uint(data.count) == 3u && uint(data.count) == 3")
    assert "no such overload" in eval_error("uint(data.count) + data.count == 6")
    assert run("data.u + 1u == 4u", with_data(u=UInt(3)))


def test_comprehensions_are_thread_safe() -> None:
    condition = compile_("data.items.all(i, i == data.expected)")
    failures: list[str] = []

    def worker(value: int) -> None:
        activation = {"data": {"items": [value] * 200, "expected": value}}
        for _ in range(200):
            if condition(activation) is not True:
                failures.append(f"worker {value}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
