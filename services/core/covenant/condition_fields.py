"""What a rule's condition may do with the signal's fields, checked against a signal schema.

**No oracle on identifiers.** A rule's decision (delivered or withheld) is itself a
disclosure: the audit log and the feed show it to people who never see the signal. A condition
such as ``data.ean == "871687315335347874"`` or ``data.address.matches("^1608")`` would turn
every decision into an answer to the question "did this raw identifier have that value?".
So a condition may not read a field marked ``x-identifier`` or ``x-personal`` — by any route:
``data.ean``, ``data["ean"]``, a member of an object, the whole object or the whole of
``data`` (``data == {...}``, ``dyn(data).ean``, ``data[k]``, ``"ean" in data``, a
comprehension over ``data``), a list or map built around it, a comprehension variable bound
to it — except in the forms below, which reveal no more than any rule may share without
special declaration:

* ``has(data.f)`` — whether the field is present;
* ``postcode4(data.f)`` for an address or postcode field — the 4-digit postcode area, which
  is what ``generalise:postcode4`` shares.

The analysis works on the syntax tree (:mod:`.cel_ast`), so it sees every route the compiler
would evaluate; anything it cannot resolve to a named field counts as reading everything
below it (deny by default).

The same walk hands every comparison to :mod:`.condition_types`, which reports those that
can never hold (``data.score >= "hoog"`` on a number).
"""

from __future__ import annotations

from collections.abc import Mapping
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
from services.core.covenant.condition_types import Comparisons, Finding
from services.core.schema_registry import FieldInfo

__all__ = ["ALLOWED_FORMS", "DATA", "Finding", "check_fields"]

DATA: Final = "data"
"""The variable holding the signal's data."""

ALLOWED_FORMS: Final = (
    "has(data.<field>)",
    "postcode4(data.<address or postcode field>)",
)
"""The only ways a condition may touch an identifier or personal field (documented)."""

_LOCATION_KINDS: Final = frozenset({"address", "postcode"})
_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})


def check_fields(expr: Expr, source: str, fields: Mapping[str, FieldInfo]) -> list[Finding]:
    """Everything wrong with how the condition ``expr`` (parsed from ``source``) uses the
    fields of one signal schema; an empty list when it is fine."""
    walker = _Walker(source, fields)
    walker.visit(expr)
    return walker.findings + walker.comparisons.findings


class _Walker:
    def __init__(self, source: str, fields: Mapping[str, FieldInfo]) -> None:
        self.source = source
        self.fields = fields
        self.findings: list[Finding] = []
        self.locals: list[str] = []
        self.comparisons = Comparisons(source, fields, self.data_path)

    # --- helpers ------------------------------------------------------------------------------

    def text(self, expr: Expr) -> str:
        return " ".join(self.source[expr.start : expr.end].split())

    def add(self, expr: Expr, message: str, hint: str) -> None:
        self.findings.append(Finding(message, hint, expr.start + 1))

    def data_path(self, expr: Expr) -> tuple[str, ...] | None:
        """The field names of ``data.a.b`` / ``data["a"]["b"]`` (``()`` for ``data`` itself),
        or None if ``expr`` is not such a path over the signal's data."""
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
        if node.name != DATA or DATA in self.locals:
            return None
        return tuple(reversed(names))

    def sensitive(self, path: tuple[str, ...]) -> FieldInfo | None:
        """The identifier or personal field that reading ``path`` reads: the field itself,
        one enclosing it, or one inside it (reading an object reads all of its members)."""
        for end in range(1, len(path) + 1):
            info = self.fields.get(".".join(path[:end]))
            if info is not None and info.sensitive:
                return info
        prefix = ".".join(path) + "." if path else ""
        return next(
            (f for name, f in self.fields.items() if name.startswith(prefix) and f.sensitive),
            None,
        )

    def refuse(self, expr: Expr, path: tuple[str, ...], info: FieldInfo) -> None:
        what = f"an identifier ({info.identifier})" if info.identifier else "personal data"
        shown = "data" if not path else "data." + ".".join(path)
        if ".".join(path) == info.path:
            read = f"reads {shown!r}, which is {what}"
        else:
            read = f"reads {shown!r}, and with it {'data.' + info.path!r}, which is {what}"
        forms = f"has({'data.' + info.path})"
        if info.identifier in _LOCATION_KINDS:
            forms += f" or postcode4({'data.' + info.path})"
        self.add(
            expr,
            f"condition {read}: its decisions would reveal the value to whoever sees them",
            f"a condition may only test such a field as {forms}; name each other field "
            "you test (see docs/covenants.md#conditions)",
        )

    # --- walk ---------------------------------------------------------------------------------

    def visit(self, expr: Expr) -> None:  # noqa: PLR0911 - one branch per node type
        path = self.data_path(expr)
        if path is not None:
            info = self.sensitive(path)
            if info is not None:
                self.refuse(expr, path, info)
            return
        if isinstance(expr, Literal | Ident):
            return
        if isinstance(expr, Select):
            self.visit(expr.operand)
            return
        if isinstance(expr, Index):
            self.visit(expr.operand)
            self.visit(expr.index)
            return
        if isinstance(expr, Unary):
            self.visit(expr.operand)
            return
        if isinstance(expr, Binary):
            self.visit(expr.left)
            self.visit(expr.right)
            self.comparisons.check(expr)
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
            if expr.function == "has" and self.presence(expr.args[0]):
                return
            if expr.function == "postcode4" and self.postcode_area(expr, expr.args[0]):
                return
        if expr.target is not None and expr.function in _MACROS and expr.args:
            self.macro(expr, expr.target)
            return
        if expr.target is not None:
            self.visit(expr.target)
        for arg in expr.args:
            self.visit(arg)

    def presence(self, selection: Expr) -> bool:
        """``has(x.f)``: only presence is tested, the value is not read, whatever the field."""
        if not isinstance(selection, Select):
            return False  # the compiler refuses it
        if self.data_path(selection.operand) is None:
            self.visit(selection.operand)
        return True

    def postcode_area(self, expr: Call, arg: Expr) -> bool:
        """``postcode4(data.f)``: the postcode area, as ``generalise:postcode4`` shares it."""
        path = self.data_path(arg)
        info = self.fields.get(".".join(path)) if path else None
        if path is None or info is None:
            return False
        if info.identifier in _LOCATION_KINDS:
            return True
        if info.sensitive:
            self.refuse(arg, path, info)
        else:
            self.add(
                expr,
                f"postcode4() applies to address and postcode fields, not to `{self.text(arg)}`",
                "use it on an address or postcode field",
            )
        return True

    def macro(self, expr: Call, target: Expr) -> None:
        """``target.exists(x, body)`` and kin: ``x`` is a local inside the body, hiding any
        variable of that name (``data`` too)."""
        self.visit(target)
        variable = expr.args[0]
        name = variable.name if isinstance(variable, Ident) else None
        if name is not None:
            self.locals.append(name)
        try:
            for arg in expr.args[1:]:
                self.visit(arg)
        finally:
            if name is not None:
                self.locals.pop()
