"""Comparisons in a rule's condition that can never hold, found against a signal schema.

A comparison of a field with a literal of another type (``data.score >= "hoog"`` on a number;
a date-time string against ``timestamp(...)``), with a value outside the field's ``enum`` or
``pattern``, or with ``null`` (validated data holds no nulls) can never be true, or an
inequality never false. CEL would not complain: it raises an error per signal, or simply
answers false, so the rule silently withholds (or allows) everything. The covenant checker
reports each such comparison with the fix (see :mod:`.condition_fields`, which walks the
condition and hands every operator here).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from services.core.covenant.cel_ast import Binary, Call, Expr, ListExpr, Literal, MapExpr, Unary
from services.core.covenant.cel_values import (
    BOOL,
    DOUBLE,
    DURATION,
    INT,
    LIST,
    MAP,
    NULL,
    NUMERIC_KINDS,
    ORDERED_KINDS,
    STRING,
    TIMESTAMP,
    UINT,
    kind_of,
)
from services.core.schema_registry import FieldInfo

__all__ = ["Comparisons", "Finding"]

_JSON_KINDS: Final[dict[str, frozenset[str]]] = {
    "string": frozenset({STRING}),
    "number": frozenset({INT, DOUBLE}),  # JSON 1 arrives as an int, 1.5 as a double
    "integer": frozenset({INT}),
    "boolean": frozenset({BOOL}),
    "object": frozenset({MAP}),
    "array": frozenset({LIST}),
}
_RESULT_KINDS: Final[dict[str, str]] = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "timestamp": TIMESTAMP,
    "duration": DURATION,
    "size": INT,
    "postcode4": STRING,
    "hour": STRING,
    "day": STRING,
    "week": STRING,
    "month": STRING,
    "year": STRING,
    "has": BOOL,
    "matches": BOOL,
    "contains": BOOL,
    "startsWith": BOOL,
    "endsWith": BOOL,
}
_ORDERING: Final = frozenset({"<", "<=", ">", ">="})

PathOf = Callable[[Expr], "tuple[str, ...] | None"]
"""The field names of ``expr`` if it is a path over the signal's data (``data.a.b``), else None."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing wrong with a condition: ``column`` is 1-based within the condition."""

    message: str
    hint: str
    column: int


@dataclass(frozen=True, slots=True)
class _Static:
    """What is known about an operand without evaluating it: its possible CEL kinds, and the
    schema field it is (for enum, pattern and format hints)."""

    kinds: frozenset[str]
    field: FieldInfo | None = None
    value: Any = None
    literal: bool = False


class Comparisons:
    """Checks the comparison operators of one condition against one schema's fields."""

    def __init__(self, source: str, fields: Mapping[str, FieldInfo], path_of: PathOf) -> None:
        self.source = source
        self.fields = fields
        self.data_path = path_of
        self.findings: list[Finding] = []

    def text(self, expr: Expr) -> str:
        return " ".join(self.source[expr.start : expr.end].split())

    def add(self, expr: Expr, message: str, hint: str) -> None:
        self.findings.append(Finding(message, hint, expr.start + 1))

    def static(self, expr: Expr) -> _Static | None:  # noqa: PLR0911 - one case per shape
        """What is known about ``expr``'s type before any signal is seen, or None."""
        if isinstance(expr, Literal):
            return _Static(frozenset({kind_of(expr.value)}), value=expr.value, literal=True)
        if isinstance(expr, Unary) and expr.op == "-" and isinstance(expr.operand, Literal):
            kind = kind_of(expr.operand.value)
            return _Static(frozenset({kind})) if kind in NUMERIC_KINDS else None
        path = self.data_path(expr)
        if path:
            info = self.fields.get(".".join(path))
            kinds = _JSON_KINDS.get(info.json_type) if info is not None else None
            return None if kinds is None else _Static(kinds, field=info)
        if isinstance(expr, ListExpr):
            return _Static(frozenset({LIST}))
        if isinstance(expr, MapExpr):
            return _Static(frozenset({MAP}))
        if isinstance(expr, Call) and expr.function in _RESULT_KINDS:
            return _Static(frozenset({_RESULT_KINDS[expr.function]}))
        return None

    def check(self, expr: Binary) -> None:
        """Record what is wrong with the operator ``expr``, if anything."""
        if expr.op == "in":
            self.membership(expr)
            return
        if expr.op not in _ORDERING and expr.op not in ("==", "!="):
            return
        left, right = self.static(expr.left), self.static(expr.right)
        if left is None or right is None:
            return
        field, other = (left, right) if left.field is not None else (right, left)
        if field.field is None:
            return  # only comparisons involving a schema field are checked
        problem = self.mismatch(field, other, ordering=expr.op in _ORDERING)
        if problem is None:
            return
        outcome = "is always true" if expr.op == "!=" else "can never be true"
        if expr.op in _ORDERING:
            outcome += " (CEL cannot order these values: every signal is withheld)"
        self.add(expr, f"condition `{self.text(expr)}` {outcome}: {problem[0]}", problem[1])

    def mismatch(self, field: _Static, other: _Static, *, ordering: bool) -> tuple[str, str] | None:
        info = field.field
        assert info is not None  # noqa: S101 - the caller passes the field side
        name = "data." + info.path
        if ordering:
            unordered = field.kinds - ORDERED_KINDS
            if unordered == field.kinds:
                return (f"{name} is {_noun(info)}, which has no order", "compare its members")
        if any(_comparable(a, b, ordering=ordering) for a in field.kinds for b in other.kinds):
            if not ordering and other.literal and type(other.value) is str:
                return _outside(info, other.value)
            return None
        if other.kinds == {NULL}:
            return (f"{name} is never null", f"test presence with has({name}) instead")
        if TIMESTAMP in other.kinds and info.format in ("date", "date-time"):
            return (
                f"{name} is a {info.format} string, not a timestamp",
                f"convert it: timestamp({name})"
                if info.format == "date-time"
                else f'compare it with a "YYYY-MM-DD" string, or timestamp({name} + "T00:00:00Z")',
            )
        shown = " or ".join(sorted(other.kinds))
        return (
            f"{name} is {_noun(info)} and the other side is {_article(shown)}",
            f"compare it with {_noun(info)}" + (_example(info)),
        )

    def membership(self, expr: Binary) -> None:
        """``x in [literals]`` and ``"literal" in data.list`` where no element can match."""
        element, container = expr.left, expr.right
        left = self.static(element)
        if left is None:
            return
        candidates: list[_Static] = []
        if isinstance(container, ListExpr):
            if left.field is None or not container.items:
                return
            for item in container.items:
                known = self.static(item)
                if known is None:
                    return
                candidates.append(known)
            problems = [self.mismatch(left, c, ordering=False) for c in candidates]
            if all(p is not None for p in problems):
                first = next(p for p in problems if p is not None)
                self.add(
                    expr,
                    f"condition `{self.text(expr)}` can never be true: no listed value can "
                    f"match ({first[0]})",
                    first[1],
                )
            return
        path = self.data_path(container)
        info = self.fields.get(".".join(path)) if path else None
        if info is None or info.json_type != "array" or not left.literal:
            return
        item_kinds = _JSON_KINDS.get(info.item_type or "")
        if item_kinds is None:
            return
        name = "data." + info.path
        if not any(_comparable(a, b, ordering=False) for a in item_kinds for b in left.kinds):
            self.add(
                expr,
                f"condition `{self.text(expr)}` can never be true: the items of {name} are "
                f"{info.item_type}s",
                f"look for {_article(info.item_type or 'value')}",
            )
        elif info.item_enum is not None and left.value not in info.item_enum:
            self.add(
                expr,
                f"condition `{self.text(expr)}` can never be true: {left.value!r} is not a "
                f"value the items of {name} can have",
                "use one of: " + ", ".join(str(v) for v in info.item_enum),
            )


def _comparable(a: str, b: str, *, ordering: bool) -> bool:
    if a in NUMERIC_KINDS and b in NUMERIC_KINDS:
        return True
    return a == b and (not ordering or a in ORDERED_KINDS)


def _outside(info: FieldInfo, value: str) -> tuple[str, str] | None:
    """Why the string ``value`` is not a value the field can have, or None."""
    name = "data." + info.path
    if info.enum is not None and value not in info.enum:
        return (
            f"{value!r} is not one of the values of {name}",
            "use one of: " + ", ".join(str(v) for v in info.enum),
        )
    if info.pattern is not None:
        try:
            matches = re.search(info.pattern, value) is not None
        except re.error:
            return None
        if not matches:
            return (
                f"{value!r} does not match the pattern of {name} ({info.pattern})",
                "write the value as the schema does, e.g. GM0361 for a municipality",
            )
    return None


def _noun(info: FieldInfo) -> str:
    if info.format in ("date", "date-time"):
        return f"a {info.format} string"
    return _article(info.json_type if info.json_type != "array" else "list")


def _article(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _example(info: FieldInfo) -> str:
    if info.enum:
        return ": one of " + ", ".join(str(v) for v in info.enum)
    return {
        "number": ", e.g. 0.8",
        "integer": ", e.g. 2",
        "boolean": ": true or false",
        "string": ' in quotes, e.g. "text"',
    }.get(info.json_type, "")
