"""Covenant conditions: any text compiles or fails with ConditionError; compiled ones are total.

A compiled condition, evaluated on any signal data, returns a bool or raises
:class:`ConditionEvaluationError` (which the policy turns into a withheld decision) — never
another exception, whatever the data holds.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.core.covenant.condition import compile_condition
from services.core.errors import ConditionError, ConditionEvaluationError
from tests.fuzz.strategies import attempt, fuzz_settings, json_values

VARIABLES = frozenset({"data", "source", "type", "time"})
REGIONS = {"regions": {"riec_nh": ["GM0361", "GM0363"], "amsterdam": ["GM0363"]}}
TOKENS = [
    "data",
    "source",
    "type",
    "time",
    "regions",
    "regions.riec_nh",
    ".",
    "score",
    "municipality",
    "flags",
    "ean",
    "x",
    "[",
    "]",
    "(",
    ")",
    "{",
    "}",
    ",",
    ":",
    "?",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "&&",
    "||",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "in",
    "true",
    "false",
    "null",
    "0",
    "1",
    "0.8",
    "-1",
    "9223372036854775807",
    "18446744073709551615u",
    "1e308",
    '"GM0363"',
    "'x'",
    'b"\\xff"',
    "size",
    "has",
    "matches",
    '"(a+)+$"',
    "startsWith",
    "contains",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "dyn",
    "timestamp",
    "duration",
    '"1h"',
    '"2026-01-01T00:00:00Z"',
    "getFullYear",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "e",
    " ",
    "\n",
    "\\",
    "`",
    "r'x'",
    '"""',
    "0x10",
]


@st.composite
def expressions(draw: st.DrawFn) -> str:
    """Mostly-plausible CEL built from tokens, sometimes arbitrary text."""
    if not draw(st.integers(0, 6)):
        return draw(st.text(max_size=60))
    return " ".join(draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=14)))


@st.composite
def templated(draw: st.DrawFn) -> str:
    """Well-formed conditions of the shapes covenants use, with random operands."""
    field = draw(st.sampled_from(["data.score", "data.municipality", "data.flags", "data.x.y"]))
    operand = draw(
        st.sampled_from(['"GM0363"', "0.8", "1", "[1, 2]", "regions.riec_nh", "null", "true"])
    )
    shape = draw(
        st.sampled_from(
            [
                "{f} {op} {v}",
                "{f} in {v}",
                "has({f}) && {f} {op} {v}",
                "size({f}) > 0 || {f} {op} {v}",
                "{f}.exists(e, e {op} {v})",
                "{f}.all(e, e {op} {v})",
                "!({f} {op} {v}) ? {f} {op} {v} : false",
                "int({f}) + 1 {op} {v}",
                'string({f}).startsWith("GM")',
                '{f}.matches("^GM[0-9]+$")',
            ]
        )
    )
    op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
    return shape.format(f=field, v=operand, op=op)


activations = st.fixed_dictionaries(
    {
        "data": st.one_of(
            st.fixed_dictionaries(  # plausible data, so conditions also come out true/false
                {
                    "score": st.floats(0, 1),
                    "municipality": st.sampled_from(["GM0363", "GM0361", "GM0001"]),
                    "flags": st.lists(st.sampled_from([1, 2, "night"]), max_size=3),
                    "x": st.fixed_dictionaries({"y": st.one_of(st.integers(0, 3), st.text())}),
                }
            ),
            st.dictionaries(
                st.sampled_from(["score", "municipality", "flags", "x", "ean"]),
                json_values,
                max_size=5,
            ),
            json_values,
        ),
        "source": st.one_of(st.just("liander"), json_values),
        "type": st.just("energy.consumption_anomaly.v1"),
        "time": st.one_of(st.just("2026-11-01T10:00:00Z"), st.text(max_size=10)),
    }
)


def _compiled_or_none(source: str) -> Any:
    compiled, error = attempt(
        lambda: compile_condition(source, variables=VARIABLES, constants=REGIONS), ConditionError
    )
    if isinstance(error, ConditionError):
        assert error.message.strip()
        assert error.column is None or 1 <= error.column <= len(source) + 1
    return compiled


@fuzz_settings(300)
@given(st.one_of(expressions(), templated()), st.lists(activations, min_size=1, max_size=3))
def test_conditions_compile_or_fail_and_compiled_ones_are_total(source, signals):
    condition = _compiled_or_none(source)
    if condition is None:
        return
    assert condition.references <= {r for r in condition.references if r.split(".")[0] in VARIABLES}
    for activation in signals:
        result, error = attempt(partial(condition, activation), ConditionEvaluationError)
        if error is not None:
            assert str(error).strip()
        else:
            assert isinstance(result, bool)
