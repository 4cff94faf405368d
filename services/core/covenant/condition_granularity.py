"""A condition reveals nothing finer than the rule gives its recipients.

Whether a rule delivers is itself a disclosure: the recipient sees the message arrive, and its
``covenant.rule`` names the rule whose condition held. A condition that reads the signal's
exact ``time``, or a field the rule generalises or drops, would tell the recipient more than
the rule shares: two rules to one recipient, ``when: data.received_at.startsWith(
"2026-09-02T00:4")`` and its negation, place an anonymous tip in a 10-minute window while the
messages show only the month. So a condition may read

* a data field the rule shares as ``keep`` or ``plain`` — in any way;
* a time field the rule shares as ``generalise:<unit>``, and the envelope ``time``, only
  through ``hour()``, ``day()``, ``week()``, ``month()`` or ``year()`` whose value that unit
  determines: the unit itself or a coarser one, except that a week determines no month or
  year (it can straddle two) (``month(data.received_at) == "2026-09"``; ``time`` follows the
  rule's envelope time, ``generalise:day`` by default);
* a number the rule shares as ``generalise:band:<w>`` only as ``>=`` or ``<`` against a
  multiple of ``w`` (``data.score >= 0.9`` with bands of 0.05);
* an address or postcode the rule shares as ``generalise:postcode4`` only as
  ``postcode4(data.f)``;
* ``source`` only when the envelope keeps it; ``type`` always (the rule names the types);
* any field only as ``has(data.f)`` — presence, which says whether the supplier filled it in.

A field the rule pseudonymises or does not share at all may be tested for presence only. And
because the first rule whose condition holds decides for a recipient, a message under one rule
also says that the conditions of the other rules deciding the same source, type and recipient
did not hold: the checker therefore holds each condition to what every such rule shares.

The walk works on the syntax tree (:mod:`.cel_ast`) like :mod:`.condition_fields`; anything
it cannot resolve to a named field reads everything below it (deny by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from services.core.covenant.cel_ast import (
    Binary,
    Call,
    Expr,
    Ident,
    Index,
    Literal,
    Select,
    Unary,
    compound_parts,
)
from services.core.covenant.condition_types import Finding
from services.core.covenant.envelope_spec import EnvelopeSpec
from services.core.covenant.transforms import TIME_METHODS, ShareSpec
from services.core.schema_registry import FieldInfo

__all__ = ["COARSENERS", "Disclosure", "check_granularity"]

COARSENERS: Final = TIME_METHODS
"""The functions that read a time no finer than ``generalise:<unit>`` shares it."""

_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_FULL: Final = frozenset({"keep", "plain"})
_MIRROR: Final = {">=": "<=", "<=": ">=", ">": "<", "<": ">"}
"""``literal OP field`` as ``field OP' literal``."""
_DERIVABLE: Final = {
    "hour": ("hour", "day", "week", "month", "year"),
    "day": ("day", "week", "month", "year"),
    "week": ("week",),  # a week can straddle two months or years
    "month": ("month", "year"),
    "year": ("year",),
}
"""For a time shared to the ``unit``: the coarsening functions whose value it determines."""


@dataclass(frozen=True, slots=True)
class Disclosure:
    """What one rule gives its recipients: its share specs and its envelope."""

    shares: Mapping[str, ShareSpec]
    envelope: EnvelopeSpec
    rule: str
    """The rule's id, named in findings about another rule's condition."""


def check_granularity(
    expr: Expr, source: str, fields: Mapping[str, FieldInfo], given: Disclosure
) -> list[Finding]:
    """Every place where the condition ``expr`` (parsed from ``source``) reads a value finer
    than ``given`` discloses it; an empty list when it reads nothing finer."""
    walker = _Walker(source, fields, given)
    walker.visit(expr)
    return walker.findings


class _Walker:
    def __init__(self, source: str, fields: Mapping[str, FieldInfo], given: Disclosure) -> None:
        self.source = source
        self.fields = fields
        self.given = given
        self.findings: list[Finding] = []
        self.locals: list[str] = []

    def text(self, expr: Expr) -> str:
        return " ".join(self.source[expr.start : expr.end].split())

    def add(self, expr: Expr, message: str, hint: str) -> None:
        self.findings.append(Finding(message, hint, expr.start + 1))

    def variable(self, expr: Expr) -> str | None:
        """``time``, ``source`` or ``type`` when ``expr`` is that variable (not a local)."""
        if isinstance(expr, Ident) and expr.name not in self.locals:
            return expr.name
        return None

    def data_path(self, expr: Expr) -> tuple[str, ...] | None:
        names: list[str] = []
        node = expr
        while not isinstance(node, Ident):
            if isinstance(node, Select):
                names.append(node.field)
                node = node.operand
            elif (
                isinstance(node, Index)
                and isinstance(node.index, Literal)
                and type(node.index.value) is str
            ):
                names.append(node.index.value)
                node = node.operand
            else:
                return None
        if node.name != "data" or "data" in self.locals:
            return None
        return tuple(reversed(names))

    def share(self, path: tuple[str, ...]) -> ShareSpec | None:
        """How the rule shares ``path`` (its own entry or an enclosing object's), or None."""
        for end in range(len(path), 0, -1):
            spec = self.given.shares.get(".".join(path[:end]))
            if spec is not None:
                return spec
        return None

    def finer(self, path: tuple[str, ...]) -> tuple[str, ShareSpec | None] | None:
        """The first field at or below ``path`` the rule does not share in full, with how it
        shares it; None when reading ``path`` whole reveals nothing the rule does not share."""
        spec = self.share(path)
        if spec is not None:
            return None if spec.action in _FULL else (".".join(path), spec)
        prefix = ".".join(path) + "." if path else ""
        below = sorted(name for name in self.fields if name.startswith(prefix))
        if not below:
            return (".".join(path), None)  # unknown to the schema: the checker reports it
        for name in below:
            inner = self.share(tuple(name.split(".")))
            has_members = any(f.startswith(name + ".") for f in self.fields)
            if (inner is None and not has_members) or (inner and inner.action not in _FULL):
                return (name, inner)
        return None

    # --- findings -------------------------------------------------------------------------------

    def refuse_field(self, expr: Expr, name: str, spec: ShareSpec | None) -> None:
        field = f"data.{name}"
        if spec is None or spec.action == "pseudonymise":
            how = "does not share" if spec is None else "pseudonymises"
            hint = f"test only its presence, has({field}), or share the field to the recipients"
        elif spec.method in TIME_METHODS:
            how = f"shares only as {spec.text}"
            hint = f"read it as {spec.method}({field}) (or {_coarser(spec.method)})"
        elif spec.method == "band":
            how = f"shares only as {spec.text}"
            hint = (
                f"compare it with >= or < against a multiple of {spec.argument}, e.g. "
                f"{field} >= {spec.argument}"
            )
        else:
            how = f"shares only as {spec.text}"
            hint = f"read it as postcode4({field})"
        self.add(
            expr,
            f"condition reads `{self.text(expr)}`, finer than rule {self.given.rule!r} "
            f"{how} {field}: whether it delivers would tell the recipients more than the "
            "rule shares",
            hint + " (see docs/covenants.md#what-a-condition-may-read)",
        )

    def refuse_time(self, expr: Expr) -> None:
        time = self.given.envelope.time
        if time == "omit":
            hint = "leave the envelope time out of the condition, or share it (envelope: time)"
        else:
            unit = time.removeprefix("generalise:")
            hint = f"read it as {unit}(time) (or {_coarser(unit)})"
        self.add(
            expr,
            f"condition reads `{self.text(expr)}`, finer than rule {self.given.rule!r} gives "
            f"its recipients the signal's time (envelope time {time}): whether it delivers "
            "would tell them more",
            hint + " (see docs/covenants.md#what-a-condition-may-read)",
        )

    # --- walk -----------------------------------------------------------------------------------

    def visit(self, expr: Expr) -> None:  # noqa: PLR0911, PLR0912 - one branch per node type
        name = self.variable(expr)
        if name == "time":
            if self.given.envelope.time != "keep":
                self.refuse_time(expr)
            return
        if name == "source":
            if self.given.envelope.source == "omit":
                self.add(
                    expr,
                    f"condition reads `source`, which rule {self.given.rule!r} omits from "
                    "its messages: whether it delivers would name the supplier",
                    "keep the source in the envelope, or leave it out of the condition",
                )
            return
        path = self.data_path(expr)
        if path is not None:
            finer = self.finer(path)
            if finer is not None:
                self.refuse_field(expr, *finer)
            return
        if isinstance(expr, Literal | Ident):
            return
        if isinstance(expr, Select | Unary):
            self.visit(expr.operand)
            return
        if isinstance(expr, Index):
            self.visit(expr.operand)
            self.visit(expr.index)
            return
        if isinstance(expr, Binary):
            if not self.band_boundary(expr):
                self.visit(expr.left)
                self.visit(expr.right)
            return
        parts = compound_parts(expr)
        if parts is not None:
            for part in parts:
                self.visit(part)
            return
        if isinstance(expr, Call):
            self.call(expr)
            return
        raise AssertionError(f"unknown syntax node {type(expr).__name__}")  # pragma: no cover

    def call(self, expr: Call) -> None:
        if expr.target is None and len(expr.args) == 1:
            arg = expr.args[0]
            if expr.function == "has" and isinstance(arg, Select):
                if self.data_path(arg.operand) is None:
                    self.visit(arg.operand)
                return
            if expr.function in COARSENERS and self.coarsened(expr.function, arg):
                return
            if expr.function == "postcode4" and self.area(arg):
                return
        if expr.target is not None and expr.function in _MACROS and expr.args:
            self.visit(expr.target)
            variable = expr.args[0]
            local = variable.name if isinstance(variable, Ident) else None
            if local is not None:
                self.locals.append(local)
            try:
                for arg in expr.args[1:]:
                    self.visit(arg)
            finally:
                if local is not None:
                    self.locals.pop()
            return
        if expr.target is not None:
            self.visit(expr.target)
        for arg in expr.args:
            self.visit(arg)

    def coarsened(self, unit: str, arg: Expr) -> bool:
        """``<unit>(time)`` or ``<unit>(data.f)`` no finer than the rule shares it."""
        if self.variable(arg) == "time":
            time = self.given.envelope.time
            if time == "keep" or unit in _DERIVABLE.get(time.removeprefix("generalise:"), ()):
                return True
            self.refuse_time(arg)
            return True
        path = self.data_path(arg)
        if path is None:
            return False
        spec = self.share(path)
        if spec is not None and (
            spec.action in _FULL
            or (spec.method in TIME_METHODS and unit in _DERIVABLE[spec.method])
        ):
            return True
        finer = self.finer(path)
        self.refuse_field(arg, *(finer or (".".join(path), spec)))
        return True

    def area(self, arg: Expr) -> bool:
        """``postcode4(data.f)`` where the rule shares ``f`` whole or as its postcode area."""
        path = self.data_path(arg)
        if path is None:
            return False
        spec = self.share(path)
        if spec is not None and (spec.action in _FULL or spec.method == "postcode4"):
            return True
        self.refuse_field(arg, ".".join(path), spec)
        return True

    def band_boundary(self, expr: Binary) -> bool:
        """``data.f >= c`` or ``data.f < c`` (either way round) with ``c`` a multiple of the
        band width the rule shares ``f`` in: the band tells as much."""
        if expr.op not in _MIRROR:
            return False
        field, other, op = expr.left, expr.right, expr.op
        if self.data_path(field) is None:
            field, other, op = expr.right, expr.left, _MIRROR[expr.op]
        if op not in (">=", "<"):
            return False  # `data.f > c` needs to know whether f is c itself: finer than a band
        path = self.data_path(field)
        spec = self.share(path) if path is not None else None
        if spec is None or spec.method != "band" or spec.argument is None:
            return False
        value = _number(other)
        if value is None:
            return False
        try:
            return value % Decimal(spec.argument) == 0
        except InvalidOperation:  # pragma: no cover - a finite number modulo a positive width
            return False


def _number(expr: Expr) -> Decimal | None:
    negative = False
    if isinstance(expr, Unary) and expr.op == "-":
        negative, expr = True, expr.operand
    if not isinstance(expr, Literal) or type(expr.value) not in (int, float):
        return None
    value = Decimal(repr(expr.value))
    return -value if negative else value


def _coarser(unit: str) -> str:
    return ", ".join(f"{u}()" for u in _DERIVABLE[unit][1:]) or "nothing else"
