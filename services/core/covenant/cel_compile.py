"""Compile a CEL syntax tree into a tree of Python closures, once per condition.

Each node of the syntax tree becomes a :class:`~.cel_closures.Node`: a closure over the
activation, the node's static CEL type where it is known at compile time, and the activation
names it reads. The compiler checks what it can see (unknown names and functions, unknown
members of constants, operators applied to values of the wrong static type) and evaluates
nodes that read nothing right away, replacing them by their value (constant folding): so
``x in regions.riec_nh`` tests ``x`` against a prepared hash set, and
``timestamp("2024-01-01T00:00:00Z")`` is parsed once.

Every node is also rendered for the fast path (:mod:`.cel_fastpath`) where it has a template.
Comprehension macros (``exists``, ``all``, ``map``...) nest at most
:data:`MAX_COMPREHENSION_NESTING` deep, so evaluation work stays polynomial in the data size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from services.core.covenant.cel_ast import (
    Binary,
    Call,
    Conditional,
    Expr,
    Ident,
    Index,
    ListExpr,
    Literal,
    Logical,
    MapExpr,
    Select,
    Unary,
)
from services.core.covenant.cel_closures import (
    FLIPPED,
    Activation,
    Evaluator,
    Inline,
    Node,
    arithmetic,
    constant_fn,
    equality,
    exists_one,
    filter_items,
    logical2,
    logical_n,
    map_items,
    membership,
    not_bool,
    ordering,
    path_getter,
    quantifier,
    require_bool,
)
from services.core.covenant.cel_fastpath import FastPath, NotInlinable
from services.core.covenant.cel_functions import (
    DURATION_ACCESSORS,
    TIMESTAMP_ACCESSORS,
    RegexError,
    compile_regex,
    matches,
    postcode_area,
    size,
    time_part,
    time_unit,
    time_zone,
    to_bytes,
    to_double,
    to_duration,
    to_int,
    to_string,
    to_timestamp,
    to_uint,
)
from services.core.covenant.cel_values import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    INT,
    KEY_KINDS,
    LIST,
    MAP,
    NUMERIC_KINDS,
    ORDERED_KINDS,
    STRING,
    TIMESTAMP,
    UINT,
    MemberSet,
    UInt,
    add,
    article,
    compare,
    contains,
    divide,
    equals,
    fail,
    has_field,
    index_value,
    kind_name,
    kind_of,
    map_lookup,
    modulo,
    multiply,
    negate,
    no_overload,
    select_field,
    subtract,
)
from services.core.covenant.transforms import TIME_METHODS
from services.core.errors import ConditionError, ConditionEvaluationError

MAX_COMPREHENSION_NESTING: Final = 2
"""``exists``/``all``/``map``... inside each other at most this deep (bounds work to n²)."""

_LABEL_LENGTH: Final = 60
_EMPTY: Final[Activation] = MappingProxyType({})


_ARITHMETIC: Final[dict[str, Callable[[Any, Any, str], Any]]] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "%": modulo,
}
_ARITHMETIC_KINDS: Final[dict[str, dict[tuple[str, str], str]]] = {
    "+": {
        (INT, INT): INT,
        (UINT, UINT): UINT,
        (DOUBLE, DOUBLE): DOUBLE,
        (STRING, STRING): STRING,
        (BYTES, BYTES): BYTES,
        (LIST, LIST): LIST,
        (TIMESTAMP, DURATION): TIMESTAMP,
        (DURATION, TIMESTAMP): TIMESTAMP,
        (DURATION, DURATION): DURATION,
    },
    "-": {
        (INT, INT): INT,
        (UINT, UINT): UINT,
        (DOUBLE, DOUBLE): DOUBLE,
        (TIMESTAMP, TIMESTAMP): DURATION,
        (TIMESTAMP, DURATION): TIMESTAMP,
        (DURATION, DURATION): DURATION,
    },
    "*": {(INT, INT): INT, (UINT, UINT): UINT, (DOUBLE, DOUBLE): DOUBLE},
    "/": {(INT, INT): INT, (UINT, UINT): UINT, (DOUBLE, DOUBLE): DOUBLE},
    "%": {(INT, INT): INT, (UINT, UINT): UINT},
}

_CONVERSIONS: Final[dict[str, tuple[Callable[[Any, str], Any], frozenset[str], str]]] = {
    "int": (to_int, frozenset({INT, UINT, DOUBLE, STRING, TIMESTAMP}), INT),
    "uint": (to_uint, frozenset({INT, UINT, DOUBLE, STRING}), UINT),
    "double": (to_double, frozenset({INT, UINT, DOUBLE, STRING}), DOUBLE),
    "string": (
        to_string,
        frozenset({STRING, INT, UINT, DOUBLE, BOOL, BYTES, TIMESTAMP, DURATION}),
        STRING,
    ),
    "bytes": (to_bytes, frozenset({STRING, BYTES}), BYTES),
    "timestamp": (to_timestamp, frozenset({STRING, INT, TIMESTAMP}), TIMESTAMP),
    "duration": (to_duration, frozenset({STRING, DURATION}), DURATION),
}
_STRING_METHODS: Final[dict[str, Callable[[str, str], bool]]] = {
    "contains": str.__contains__,
    "startsWith": str.startswith,
    "endsWith": str.endswith,
}
_MACROS: Final = frozenset({"all", "exists", "exists_one", "map", "filter"})
_METHODS: Final = _MACROS | _STRING_METHODS.keys() | TIMESTAMP_ACCESSORS | {"matches", "size"}


class Compiler:
    """Compiles one condition; collects the variable paths it reads in ``references``."""

    def __init__(
        self, source: str, variables: frozenset[str], constants: Mapping[str, Any]
    ) -> None:
        self.source = source
        self.variables = variables
        self.constants = constants
        self.references: set[str] = set()
        self.fast = FastPath()
        self._locals: list[str] = []

    # --- helpers ------------------------------------------------------------------------------

    def label(self, expr: Expr) -> str:
        """The source text of ``expr``, shortened, for messages."""
        text = " ".join(self.source[expr.start : expr.end].split())
        if len(text) > _LABEL_LENGTH:
            text = text[: _LABEL_LENGTH - 1] + "…"
        return text

    def error(self, expr: Expr, message: str) -> ConditionError:
        return ConditionError(message, column=expr.start + 1)

    def const(self, value: Any) -> Node:
        return Node(constant_fn(value), kind_of(value), frozenset(), value)

    def render(self, inline: Callable[[], Inline | None]) -> Inline | None:
        """The fast-path code ``inline`` renders, or None where a node cannot be inlined."""
        try:
            return inline()
        except NotInlinable:
            return None

    def finish(
        self,
        expr: Expr,
        fn: Evaluator,
        kind: str | None,
        deps: frozenset[str],
        inline: Callable[[], Inline | None] | None = None,
    ) -> Node:
        """The node for ``fn``; evaluated now and folded to a constant if it reads nothing.

        ``inline`` renders the node for the fast path; it is only called for nodes that stay.
        """
        if deps:
            code = self.render(inline) if inline is not None else None
            return Node(fn, kind, deps, None, code)
        try:
            value = fn(_EMPTY)
        except ConditionEvaluationError as exc:
            raise self.error(expr, f"{exc} (this part of the condition always fails)") from None
        return self.const(value)

    def _expect(
        self, node: Node, expr: Expr, allowed: frozenset[str] | set[str], what: str
    ) -> None:
        """A compile-time type error if ``node``'s static type is known and not ``allowed``."""
        if node.kind is not None and node.kind not in allowed:
            raise self.error(expr, f"{self.label(expr)}: {what}, not {article(node.kind)}")

    # --- dispatch -----------------------------------------------------------------------------

    def compile(self, expr: Expr) -> Node:  # noqa: PLR0911 - one branch per node type
        """Compile ``expr`` (and its subtree) into a :class:`Node`."""
        if isinstance(expr, Literal):
            return self.const(expr.value)
        if isinstance(expr, Ident | Select | Index):
            path = self._path_of(expr)
            if path is not None:
                return self._path(*path, record=True)
            if isinstance(expr, Ident):
                return self._ident(expr)
            if isinstance(expr, Select):
                return self._select(expr)
            return self._index(expr)
        if isinstance(expr, Binary):
            return self._binary(expr)
        if isinstance(expr, Logical):
            return self._logical(expr)
        if isinstance(expr, Unary):
            return self._unary(expr)
        if isinstance(expr, Conditional):
            return self._conditional(expr)
        if isinstance(expr, Call):
            return self._call(expr)
        if isinstance(expr, ListExpr):
            return self._list(expr)
        if isinstance(expr, MapExpr):
            return self._map(expr)
        raise self.error(expr, "unsupported expression")  # pragma: no cover - parser node types

    # --- names and paths ----------------------------------------------------------------------

    def _path_of(self, expr: Expr) -> tuple[str, tuple[str, ...]] | None:
        """``(root, fields)`` if ``expr`` is ``var.a.b`` / ``var["a"]`` over a variable."""
        fields: list[str] = []
        node = expr
        while not isinstance(node, Ident):
            if isinstance(node, Select):
                fields.append(node.field)
                node = node.operand
            elif (
                isinstance(node, Index)
                and isinstance(node.index, Literal)
                and type(node.index.value) is str
            ):
                fields.append(node.index.value)
                node = node.operand
            else:
                return None
        if node.name not in self._locals and node.name not in self.variables:
            return None
        return node.name, tuple(reversed(fields))

    def _path(self, root: str, fields: tuple[str, ...], *, record: bool) -> Node:
        if record and root not in self._locals:
            self.references.add(".".join((root, *fields)))
        inline = self.fast.path(root, fields)
        return Node(path_getter(root, fields), None, frozenset({root}), None, inline)

    def _ident(self, expr: Ident) -> Node:
        if expr.name in self.constants:
            return self.const(self.constants[expr.name])
        known = ", ".join(sorted(self.variables | self.constants.keys()))
        raise self.error(expr, f"unknown identifier '{expr.name}' (a condition can read: {known})")

    def _constant_root(self, expr: Expr) -> tuple[str, list[str]] | None:
        """The constant a member chain starts from, with the member names after it."""
        names: list[str] = []
        node = expr
        while isinstance(node, Select | Index):
            if isinstance(node, Select):
                names.append(node.field)
            elif isinstance(node.index, Literal):
                names.append(str(node.index.value))
            else:
                return None
            node = node.operand
        if isinstance(node, Ident) and node.name in self.constants:
            return node.name, list(reversed(names))
        return None

    def _constant_member(self, expr: Select | Index, container: Any, key: Any) -> Node:
        """``container.key`` of a constant map, where an unknown key is a compile error."""
        label = self.label(expr)
        kind = kind_of(container)
        if kind != MAP:
            raise self.error(expr, f"{label}: {article(kind)} has no members")
        try:
            found, value = map_lookup(container, key, label)
        except ConditionEvaluationError as exc:
            raise self.error(expr, str(exc)) from None
        if found:
            return self.const(value)
        root = self._constant_root(expr)
        if root is None:
            raise self.error(expr, f"{label}: no such key")
        name, members = root
        noun = name[:-1] if name.endswith("s") and len(name) > 1 else f"member of {name}"
        known = sorted(str(k) for k in container)
        listed = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        # Point at the member name (``nope`` in ``regions.nope``), not at the constant.
        start = expr.end - len(expr.field) if isinstance(expr, Select) else expr.index.start
        raise ConditionError(
            f"unknown {noun} '{'.'.join(members)}' (known: {listed or 'none'})", column=start + 1
        )

    def _select(self, expr: Select) -> Node:
        operand = self.compile(expr.operand)
        if operand.constant:
            return self._constant_member(expr, operand.value, expr.field)
        self._expect(operand, expr, {MAP}, "only a map has fields")
        label = self.label(expr)
        of = operand.fn
        name = expr.field

        def select(act: Activation) -> Any:
            return select_field(of(act), name, label)

        fast = self.fast
        return self.finish(
            expr,
            select,
            None,
            operand.deps,
            lambda: fast.call(select_field, fast.operand(operand), name, label),
        )

    def _index(self, expr: Index) -> Node:
        operand = self.compile(expr.operand)
        index = self.compile(expr.index)
        self._expect(operand, expr, {LIST, MAP}, "only a list or a map can be indexed")
        if operand.kind == LIST:
            self._expect(index, expr.index, {INT, UINT}, "a list index must be an int")
        if operand.kind == MAP:
            self._expect(
                index, expr.index, KEY_KINDS, "a map key must be an int, uint, bool or string"
            )
        if operand.constant and index.constant and operand.kind == MAP:
            return self._constant_member(expr, operand.value, index.value)
        label = self.label(expr)
        of = operand.fn
        xf = index.fn

        def index_fn(act: Activation) -> Any:
            return index_value(of(act), xf(act), label)

        fast = self.fast
        return self.finish(
            expr,
            index_fn,
            None,
            operand.deps | index.deps,
            lambda: fast.call(index_value, fast.operand(operand), fast.operand(index), label),
        )

    # --- operators ----------------------------------------------------------------------------

    def _binary(self, expr: Binary) -> Node:
        left = self.compile(expr.left)
        right = self.compile(expr.right)
        op = expr.op
        label = self.label(expr)
        kind = self._binary_kind(expr, op, left.kind, right.kind)
        fn: Evaluator
        if op in ("==", "!="):
            fn = equality(op == "!=", left, right)
        elif op in FLIPPED:
            fn = ordering(op, left, right, label)
        elif op == "in":
            fn = membership(left, right, label)
        else:
            fn = arithmetic(_ARITHMETIC[op], left, right, label)
        return self.finish(
            expr,
            fn,
            kind,
            left.deps | right.deps,
            lambda: self._binary_inline(op, left, right, label),
        )

    def _binary_inline(  # noqa: PLR0911 - a template per operator and literal type
        self, op: str, left: Node, right: Node, label: str
    ) -> Inline:
        """The fast-path rendering of a binary operator (mirrors the closure factories)."""
        fast = self.fast
        if op in ("==", "!="):
            negated = op == "!="
            value, other = (right, left) if left.constant and not right.constant else (left, right)
            if other.constant:
                c = other.value
                ctype = type(c)
                operand = fast.operand(value)
                if ctype is str or ctype is bytes:
                    return fast.same(negated, operand, c)
                if ctype is bool or c is None:
                    return fast.identity(negated, operand, c)
                if ctype is int or ctype is UInt or (ctype is float and not math.isnan(c)):
                    return fast.equal_number(negated, operand, c)
            call = fast.call(equals, fast.operand(value), fast.operand(other))
            return fast.negate(call) if negated else call
        if op in FLIPPED:
            flipped = left.constant and not right.constant
            value, other, fop = (right, left, FLIPPED[op]) if flipped else (left, right, op)
            if other.constant and (
                type(other.value) in (int, str)
                or (type(other.value) is float and not math.isnan(other.value))
            ):
                c = other.value
                types: tuple[type, type] = (str, str) if type(c) is str else (int, float)
                if flipped:
                    slow = lambda v: compare(op, c, v, label)  # noqa: E731
                else:
                    slow = lambda v: compare(op, v, c, label)  # noqa: E731
                return fast.compare(fop, fast.operand(value), c, types, slow)
            return fast.call(compare, op, fast.operand(left), fast.operand(right), label)
        if op == "in":
            if right.constant:
                container = right.value
                if kind_of(container) == LIST:
                    members = MemberSet(container)
                    return fast.member_list(fast.operand(left), members.strings, members)
                return fast.member_map(
                    fast.operand(left), container, lambda v: contains(container, v, label)
                )
            return fast.call(contains, fast.operand(right), fast.operand(left), label)
        return fast.arithmetic(op, fast.operand(left), fast.operand(right), label, _ARITHMETIC[op])

    def _binary_kind(self, expr: Binary, op: str, lk: str | None, rk: str | None) -> str | None:
        """The static result type of ``lk op rk``; a compile error if no overload can match."""
        if op in ("==", "!="):
            return BOOL
        problem = f"{self.label(expr)}: no such overload: {op} on ({lk or 'dyn'}, {rk or 'dyn'})"
        if op in FLIPPED:
            if (lk is not None and lk not in ORDERED_KINDS) or (
                rk is not None and rk not in ORDERED_KINDS
            ):
                raise self.error(expr, problem)
            if (
                lk is not None
                and rk is not None
                and lk != rk
                and not (lk in NUMERIC_KINDS and rk in NUMERIC_KINDS)
            ):
                raise self.error(expr, problem)
            return BOOL
        if op == "in":
            if rk is not None and rk not in (LIST, MAP):
                raise self.error(expr, problem)
            return BOOL
        table = _ARITHMETIC_KINDS[op]
        if lk is not None and rk is not None:
            if (lk, rk) not in table:
                raise self.error(expr, problem)
            return table[(lk, rk)]
        if lk is not None and all(pair[0] != lk for pair in table):
            raise self.error(expr, problem)
        if rk is not None and all(pair[1] != rk for pair in table):
            raise self.error(expr, problem)
        return None

    def _unary(self, expr: Unary) -> Node:
        operand = self.compile(expr.operand)
        label = self.label(expr)
        of = operand.fn
        if expr.op == "!":
            self._expect(operand, expr, {BOOL}, "'!' needs a bool")

            def logical_not(act: Activation) -> bool:
                value = of(act)
                if value is True:
                    return False
                if value is False:
                    return True
                raise no_overload(label, "!", value)

            return self.finish(
                expr,
                logical_not,
                BOOL,
                operand.deps,
                lambda: self.fast.negate(self.fast.boolean(operand)),
            )
        self._expect(operand, expr, {INT, DOUBLE, DURATION}, "'-' needs an int, double or duration")

        def negative(act: Activation) -> Any:
            return negate(of(act), label)

        return self.finish(
            expr,
            negative,
            operand.kind,
            operand.deps,
            lambda: self.fast.call(negate, self.fast.operand(operand), label),
        )

    def _logical(self, expr: Logical) -> Node:
        """``&&``/``||`` chains: constants fold away, errors are absorbed as CEL specifies."""
        decisive = expr.op == "||"  # the operand value that decides the result
        remaining: list[tuple[Node, str]] = []
        decided = False
        for operand_expr in expr.operands:
            # Every operand is compiled, even after a deciding constant, so that all of the
            # condition is checked and its references are complete.
            node = self.compile(operand_expr)
            self._expect(node, operand_expr, {BOOL}, f"'{expr.op}' needs bool operands")
            if node.constant:
                decided = decided or node.value is decisive
                continue
            remaining.append((node, self.label(operand_expr)))
        if decided:
            return self.const(decisive)
        if not remaining:
            return self.const(not decisive)
        deps = frozenset().union(*(node.deps for node, _ in remaining))
        fast = self.fast
        if len(remaining) == 1:
            node, label = remaining[0]
            if node.kind == BOOL:
                return node
            inline = self.render(lambda: fast.boolean(node))
            return Node(require_bool(node.fn, label), BOOL, deps, None, inline)
        inline = self.render(
            lambda: fast.logical(expr.op, [fast.boolean(node) for node, _ in remaining])
        )
        if len(remaining) == 2:
            (first, first_label), (second, second_label) = remaining
            fn = logical2(decisive, first.fn, second.fn, first_label, second_label)
        else:
            fn = logical_n(decisive, tuple((node.fn, label) for node, label in remaining))
        return Node(fn, BOOL, deps, None, inline)

    def _conditional(self, expr: Conditional) -> Node:
        condition = self.compile(expr.condition)
        then = self.compile(expr.then)
        otherwise = self.compile(expr.otherwise)
        self._expect(condition, expr.condition, {BOOL}, "a '?:' condition must be a bool")
        if condition.constant:
            return then if condition.value else otherwise
        cf, tf, of = condition.fn, then.fn, otherwise.fn
        label = self.label(expr.condition)

        def conditional(act: Activation) -> Any:
            chosen = cf(act)
            if chosen is True:
                return tf(act)
            if chosen is False:
                return of(act)
            raise not_bool(label, chosen)

        kind = then.kind if then.kind == otherwise.kind else None
        fast = self.fast
        inline = self.render(
            lambda: fast.conditional(
                fast.boolean(condition), fast.operand(then), fast.operand(otherwise)
            )
        )
        return Node(conditional, kind, condition.deps | then.deps | otherwise.deps, None, inline)

    def _list(self, expr: ListExpr) -> Node:
        items = [self.compile(item) for item in expr.items]
        fns = tuple(item.fn for item in items)

        def make_list(act: Activation) -> list[Any]:
            return [fn(act) for fn in fns]

        return self.finish(
            expr,
            make_list,
            LIST,
            frozenset().union(*(i.deps for i in items)),
            lambda: self.fast.list_display([self.fast.operand(item) for item in items]),
        )

    def _map(self, expr: MapExpr) -> Node:
        pairs: list[tuple[Evaluator, Evaluator]] = []
        deps: frozenset[str] = frozenset()
        for key_expr, value_expr in expr.entries:
            key = self.compile(key_expr)
            value = self.compile(value_expr)
            self._expect(key, key_expr, KEY_KINDS, "a map key must be an int, uint, bool or string")
            pairs.append((key.fn, value.fn))
            deps = deps | key.deps | value.deps
        label = self.label(expr)

        def make_map(act: Activation) -> dict[Any, Any]:
            out: dict[Any, Any] = {}
            for key_fn, value_fn in pairs:
                key = key_fn(act)
                if kind_of(key) not in KEY_KINDS:
                    raise fail(label, f"{article(kind_of(key))} cannot be a map key")
                if map_lookup(out, key, label)[0]:
                    raise fail(label, "repeated map key")
                if key in out:  # Python conflates true/1 and false/0, CEL does not
                    raise fail(label, "a map cannot mix bool keys with int keys")
                out[key] = value_fn(act)
            return out

        return self.finish(expr, make_map, MAP, deps)

    # --- functions and macros -----------------------------------------------------------------

    def _arity(self, expr: Call, *counts: int) -> None:
        if len(expr.args) not in counts:
            wanted = " or ".join(str(c) for c in counts)
            raise self.error(
                expr,
                f"{expr.function}() takes {wanted} argument(s), not {len(expr.args)}",
            )

    def _call(self, expr: Call) -> Node:  # noqa: PLR0911, PLR0912 - a branch per function family
        name = expr.function
        if expr.target is None:
            if name == "has":
                return self._has(expr)
            if name in _CONVERSIONS or name == "dyn":
                return self._conversion(expr)
            if name == "size":
                self._arity(expr, 1)
                return self._size(expr, expr.args[0])
            if name == "matches":
                self._arity(expr, 2)
                return self._matches(expr, expr.args[0], expr.args[1])
            if name == "postcode4":
                self._arity(expr, 1)
                return self._postcode4(expr)
            if name in TIME_METHODS:
                self._arity(expr, 1)
                return self._coarsen(expr)
            if name in _METHODS:
                raise self.error(expr, f"{name}() is a method: write value.{name}(...)")
            raise self.error(expr, f"unknown function '{name}'")
        target = expr.target
        if name in _MACROS:
            return self._macro(expr, target)
        if name == "size":
            self._arity(expr, 0)
            return self._size(expr, target)
        if name == "matches":
            self._arity(expr, 1)
            return self._matches(expr, target, expr.args[0])
        if name in _STRING_METHODS:
            self._arity(expr, 1)
            return self._string_method(expr, target, expr.args[0])
        if name in TIMESTAMP_ACCESSORS:
            self._arity(expr, 0, 1)
            return self._accessor(expr, target)
        if name in _CONVERSIONS or name in ("has", "dyn", "postcode4", *TIME_METHODS):
            raise self.error(expr, f"{name}() is not a method: write {name}(value)")
        raise self.error(expr, f"unknown function '{name}'")

    def _has(self, expr: Call) -> Node:
        if len(expr.args) != 1 or not isinstance(expr.args[0], Select):
            raise self.error(expr, "has() takes one field selection, e.g. has(data.field)")
        selection = expr.args[0]
        name = selection.field
        path = self._path_of(selection.operand)
        if path is not None:
            root, fields = path
            operand = self._path(root, fields, record=False)
            if root not in self._locals:
                self.references.add(".".join((root, *fields, name)))
        else:
            operand = self.compile(selection.operand)
        self._expect(operand, selection, {MAP}, "has() needs a map")
        label = self.label(expr)
        of = operand.fn

        def has(act: Activation) -> bool:
            container = of(act)
            if type(container) is dict:
                return name in container
            return has_field(container, name, label)

        return self.finish(
            expr,
            has,
            BOOL,
            operand.deps,
            lambda: self.fast.has(
                self.fast.operand(operand), name, lambda v: has_field(v, name, label)
            ),
        )

    def _conversion(self, expr: Call) -> Node:
        self._arity(expr, 1)
        arg = self.compile(expr.args[0])
        if expr.function == "dyn":
            return Node(arg.fn, None, arg.deps, arg.value, arg.inline)
        convert, accepted, kind = _CONVERSIONS[expr.function]
        self._expect(arg, expr, accepted, f"{expr.function}() cannot convert this")
        label = self.label(expr)
        af = arg.fn

        def conversion(act: Activation) -> Any:
            return convert(af(act), label)

        return self.finish(
            expr,
            conversion,
            kind,
            arg.deps,
            lambda: self.fast.call(convert, self.fast.operand(arg), label),
        )

    def _postcode4(self, expr: Call) -> Node:
        arg = self.compile(expr.args[0])
        self._expect(arg, expr, {STRING}, "postcode4() needs an address or postcode string")
        label = self.label(expr)
        af = arg.fn

        def area(act: Activation) -> str:
            return postcode_area(af(act), label)

        return self.finish(
            expr,
            area,
            STRING,
            arg.deps,
            lambda: self.fast.call(postcode_area, self.fast.operand(arg), label),
        )

    def _coarsen(self, expr: Call) -> Node:
        """``day(x)`` and kin: a date or date-time string as ``generalise:<unit>`` shares it."""
        arg = self.compile(expr.args[0])
        self._expect(arg, expr, {STRING}, f"{expr.function}() needs a date or date-time string")
        label = self.label(expr)
        coarsen = time_unit(expr.function)
        af = arg.fn

        def coarsened(act: Activation) -> str:
            return coarsen(af(act), label)

        return self.finish(
            expr,
            coarsened,
            STRING,
            arg.deps,
            lambda: self.fast.call(coarsen, self.fast.operand(arg), label),
        )

    def _size(self, expr: Call, target: Expr) -> Node:
        arg = self.compile(target)
        self._expect(
            arg, expr, {STRING, BYTES, LIST, MAP}, "size() needs a string, bytes, list or map"
        )
        label = self.label(expr)
        af = arg.fn

        def size_of(act: Activation) -> int:
            value = af(act)
            vtype = type(value)
            if vtype is str or vtype is list or vtype is dict:
                return len(value)
            return size(value, label)

        return self.finish(
            expr,
            size_of,
            INT,
            arg.deps,
            lambda: self.fast.size(self.fast.operand(arg), lambda v: size(v, label)),
        )

    def _string_method(self, expr: Call, target: Expr, arg_expr: Expr) -> Node:
        name = expr.function
        receiver = self.compile(target)
        arg = self.compile(arg_expr)
        self._expect(receiver, expr, {STRING}, f"{name}() is a string method")
        self._expect(arg, arg_expr, {STRING}, f"{name}() needs a string argument")
        method = _STRING_METHODS[name]
        label = self.label(expr)
        rf = receiver.fn

        def slow(text: Any, part: Any) -> bool:
            if kind_name(text) == STRING and kind_name(part) == STRING:
                return method(str(text), str(part))
            raise no_overload(label, f"{name}()", text, part)

        fn: Evaluator
        if arg.constant:
            part = arg.value

            def string_method_const(act: Activation) -> bool:
                text = rf(act)
                if type(text) is str:
                    return method(text, part)
                return slow(text, part)

            return self.finish(
                expr,
                string_method_const,
                BOOL,
                receiver.deps,
                lambda: self.fast.string_method(
                    self.fast.operand(receiver), method, part, lambda v: slow(v, part)
                ),
            )
        else:
            af = arg.fn

            def string_method(act: Activation) -> bool:
                text = rf(act)
                other = af(act)
                if type(text) is str and type(other) is str:
                    return method(text, other)
                return slow(text, other)

            fn = string_method
        return self.finish(expr, fn, BOOL, receiver.deps | arg.deps)

    def _matches(self, expr: Call, text_expr: Expr, pattern_expr: Expr) -> Node:
        text = self.compile(text_expr)
        pattern = self.compile(pattern_expr)
        self._expect(text, text_expr, {STRING}, "matches() applies to a string")
        self._expect(pattern, pattern_expr, {STRING}, "matches() needs a string pattern")
        label = self.label(expr)
        tf = text.fn
        fn: Evaluator
        if pattern.constant:
            try:
                search = compile_regex(pattern.value).search
            except RegexError as exc:
                raise self.error(pattern_expr, str(exc)) from None
            source = pattern.value

            def matches_const(act: Activation) -> bool:
                value = tf(act)
                if type(value) is str:
                    return search(value) is not None
                return matches(value, source, label)

            return self.finish(
                expr,
                matches_const,
                BOOL,
                text.deps,
                lambda: self.fast.search(
                    self.fast.operand(text), search, lambda v: matches(v, source, label)
                ),
            )
        else:
            pf = pattern.fn

            def matches_dynamic(act: Activation) -> bool:
                return matches(tf(act), pf(act), label)

            fn = matches_dynamic
        return self.finish(expr, fn, BOOL, text.deps | pattern.deps)

    def _accessor(self, expr: Call, target: Expr) -> Node:
        name = expr.function
        receiver = self.compile(target)
        allowed = {TIMESTAMP, DURATION} if name in DURATION_ACCESSORS else {TIMESTAMP}
        if expr.args:
            allowed = {TIMESTAMP}
        self._expect(receiver, expr, allowed, f"{name}() does not apply here")
        label = self.label(expr)
        rf = receiver.fn
        deps = receiver.deps
        fast = self.fast
        if not expr.args:

            def accessor(act: Activation) -> int:
                return time_part(rf(act), name, None, label)

            return self.finish(
                expr,
                accessor,
                INT,
                deps,
                lambda: fast.call(time_part, fast.operand(receiver), name, None, label),
            )
        zone_node = self.compile(expr.args[0])
        self._expect(zone_node, expr.args[0], {STRING}, "a time zone must be a string")
        deps = deps | zone_node.deps
        if zone_node.constant:
            zone = time_zone(zone_node.value)
            if zone is None:
                raise self.error(expr.args[0], f"unknown time zone {zone_node.value!r}")

            def accessor_in_zone(act: Activation) -> int:
                return time_part(rf(act), name, zone, label)

            return self.finish(
                expr,
                accessor_in_zone,
                INT,
                deps,
                lambda: fast.call(time_part, fast.operand(receiver), name, zone, label),
            )
        zf = zone_node.fn

        def accessor_in_dynamic_zone(act: Activation) -> int:
            zone_name = zf(act)
            if kind_name(zone_name) != STRING:
                raise no_overload(label, f"{name}()", zone_name)
            dynamic_zone = time_zone(str(zone_name))
            if dynamic_zone is None:
                raise fail(label, "unknown time zone")
            return time_part(rf(act), name, dynamic_zone, label)

        return self.finish(expr, accessor_in_dynamic_zone, INT, deps)

    def _macro(self, expr: Call, target: Expr) -> Node:
        name = expr.function
        self._arity(expr, *((2, 3) if name == "map" else (2,)))
        variable = expr.args[0]
        if not isinstance(variable, Ident):
            raise self.error(variable, f"{name}() needs a variable name as its first argument")
        if len(self._locals) >= MAX_COMPREHENSION_NESTING:
            raise self.error(
                expr, f"comprehensions nest more than {MAX_COMPREHENSION_NESTING} deep"
            )
        source = self.compile(target)
        self._expect(source, target, {LIST, MAP}, f"{name}() ranges over a list or a map")
        self._locals.append(variable.name)
        local = self.fast.push_local(variable.name)
        try:
            bodies = [self.compile(arg) for arg in expr.args[1:]]
        finally:
            self._locals.pop()
            self.fast.pop_local()
        if name != "map" or len(bodies) == 2:
            self._expect(bodies[0], expr.args[1], {BOOL}, f"the {name}() predicate must be a bool")
        body_deps = frozenset().union(*(body.deps for body in bodies)) - {variable.name}
        label = self.label(expr)
        var = variable.name
        fn: Evaluator
        if name in ("all", "exists"):
            fn = quantifier(name == "exists", source.fn, bodies[0].fn, var, label)
            kind = BOOL
        elif name == "exists_one":
            fn = exists_one(source.fn, bodies[0].fn, var, label)
            kind = BOOL
        elif name == "filter":
            fn = filter_items(source.fn, bodies[0].fn, var, label)
            kind = LIST
        elif len(bodies) == 1:
            fn = map_items(source.fn, None, bodies[0].fn, var, label)
            kind = LIST
        else:
            fn = map_items(source.fn, bodies[0].fn, bodies[1].fn, var, label)
            kind = LIST
        fast = self.fast
        return self.finish(
            expr,
            fn,
            kind,
            source.deps | body_deps,
            lambda: fast.comprehension(name, var, local, fast.operand(source), bodies),
        )
