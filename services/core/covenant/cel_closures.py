"""The closures that compiled CEL conditions are made of.

A compiled expression is a :class:`Node` whose ``fn`` takes the activation (the per-signal
variables) and returns the expression's value. The factories here build the closures for the
hot shapes: a field path is one nested dict lookup, a comparison or ``in`` against a constant
checks the operand's type inline (``in`` a constant list is a hash-set lookup), and ``&&``/``||``
implement CEL's error absorption without extra calls on the fast path. Comprehension macros
bind their variable in a private copy of the activation, so a compiled condition is safe to
evaluate from several threads at once.

The closures only call the operator functions of :mod:`.cel_values` and :mod:`.cel_functions`,
index mappings and lists, and loop over data already in the activation: nothing here evaluates
Python source or reads attributes of Python objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from services.core.covenant.cel_values import (
    LIST,
    MAP,
    MemberSet,
    UInt,
    article,
    compare,
    contains,
    equals,
    fail,
    iteration_items,
    kind_name,
    kind_of,
    map_lookup,
)
from services.core.errors import ConditionEvaluationError

Activation = Mapping[str, Any]
Evaluator = Callable[[Activation], Any]

FLIPPED: Final = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}
"""The operator that gives the same result with the operands swapped."""


@dataclass(frozen=True, slots=True)
class Inline:
    """A Python expression computing a node's value inside the generated fast-path function
    (where ``act`` is the activation), and how deeply inlined code nests in it."""

    code: str
    depth: int


@dataclass(frozen=True, slots=True)
class Node:
    """A compiled expression: ``fn(activation)`` evaluates it.

    ``kind`` is the static CEL type (None when only known at run time), ``deps`` the activation
    names it reads; a node without deps is a constant and ``value`` holds its value. ``inline``
    is the node rendered for the fast path (:mod:`.cel_fastpath`), where it has a template.
    """

    fn: Evaluator
    kind: str | None
    deps: frozenset[str]
    value: Any = None
    inline: Inline | None = None

    @property
    def constant(self) -> bool:
        return not self.deps


def constant_fn(value: Any) -> Evaluator:
    """The evaluator of a folded constant."""

    def constant(act: Activation) -> Any:
        return value

    return constant


def not_bool(label: str, value: Any) -> ConditionEvaluationError:
    """The error for a non-bool where CEL needs a bool (a logical operand, a predicate)."""
    return fail(label, f"expected a bool, got {kind_name(value)}")


def path_error(act: Activation, root: str, fields: tuple[str, ...]) -> ConditionEvaluationError:
    """Why reading ``root.fields...`` failed, naming the path and types, never a value."""
    try:
        value = act[root]
    except KeyError:
        return ConditionEvaluationError(f"variable '{root}' is not provided")
    where = root
    for name in fields:
        kind = kind_name(value)
        if kind != MAP:
            return ConditionEvaluationError(
                f"{where}.{name}: {where} is {article(kind)}, not a map"
            )
        found, value = map_lookup(value, name, where)
        if not found:
            return ConditionEvaluationError(f"missing field {where}.{name}")
        where = f"{where}.{name}"
    return ConditionEvaluationError(f"{where}: could not be read")  # pragma: no cover


def path_getter(root: str, fields: tuple[str, ...]) -> Evaluator:
    """A closure reading ``act[root][f1][f2]...``, specialised for the common short paths."""
    if not fields:

        def read_variable(act: Activation) -> Any:
            try:
                return act[root]
            except KeyError:
                raise path_error(act, root, fields) from None

        return read_variable
    if len(fields) == 1:
        (first,) = fields

        def read_field(act: Activation) -> Any:
            try:
                return act[root][first]
            except (KeyError, TypeError):
                raise path_error(act, root, fields) from None

        return read_field
    if len(fields) == 2:
        first, second = fields

        def read_field2(act: Activation) -> Any:
            try:
                return act[root][first][second]
            except (KeyError, TypeError):
                raise path_error(act, root, fields) from None

        return read_field2

    def read_path(act: Activation) -> Any:
        try:
            value = act[root]
            for name in fields:
                value = value[name]
        except (KeyError, TypeError):
            raise path_error(act, root, fields) from None
        return value

    return read_path


def equality(negated: bool, left: Node, right: Node) -> Evaluator:  # noqa: PLR0911
    """``==``/``!=``, with the literal-operand cases checked inline."""
    if left.constant and not right.constant:
        left, right = right, left
    lf = left.fn
    if right.constant:
        c = right.value
        ctype = type(c)
        if ctype is str or ctype is bytes:
            if negated:
                return lambda act: lf(act) != c
            return lambda act: lf(act) == c
        if ctype is bool or c is None:
            if negated:
                return lambda act: lf(act) is not c
            return lambda act: lf(act) is c
        if ctype is int or ctype is UInt or (ctype is float and not math.isnan(c)):
            if negated:

                def not_equal_number(act: Activation) -> bool:
                    value = lf(act)
                    return value != c or type(value) is bool

                return not_equal_number

            def equal_number(act: Activation) -> bool:
                value = lf(act)
                return value == c and type(value) is not bool

            return equal_number
        if negated:
            return lambda act: not equals(lf(act), c)
        return lambda act: equals(lf(act), c)
    rf = right.fn
    if negated:
        return lambda act: not equals(lf(act), rf(act))
    return lambda act: equals(lf(act), rf(act))


def ordering(op: str, left: Node, right: Node, label: str) -> Evaluator:  # noqa: PLR0911
    """``< <= > >=``; against a literal number or string the type check is inline."""
    original = op
    flipped = left.constant and not right.constant
    if flipped:
        left, right = right, left
        op = FLIPPED[op]
    lf = left.fn
    if not right.constant:
        rf = right.fn
        return lambda act: compare(op, lf(act), rf(act), label)
    c = right.value
    # The inline check admits ints and strings, and floats that are not NaN (NaN == NaN is
    # false); everything else, including a NaN constant, goes through compare().
    fast: tuple[type, type]
    if type(c) is int or (type(c) is float and not math.isnan(c)):
        fast = (int, float)
    elif type(c) is str:
        fast = (str, str)
    else:
        if flipped:
            return lambda act: compare(original, c, lf(act), label)
        return lambda act: compare(op, lf(act), c, label)
    first, second = fast

    def slow(value: Any) -> bool:
        if flipped:
            return compare(original, c, value, label)
        return compare(op, value, c, label)

    if op == "<":

        def less(act: Activation) -> bool:
            value = lf(act)
            vtype = type(value)
            if (vtype is first or vtype is second) and value == value:  # noqa: PLR0124 - NaN
                return bool(value < c)
            return slow(value)

        return less
    if op == "<=":

        def less_equal(act: Activation) -> bool:
            value = lf(act)
            vtype = type(value)
            if (vtype is first or vtype is second) and value == value:  # noqa: PLR0124 - NaN
                return bool(value <= c)
            return slow(value)

        return less_equal
    if op == ">":

        def greater(act: Activation) -> bool:
            value = lf(act)
            vtype = type(value)
            if (vtype is first or vtype is second) and value == value:  # noqa: PLR0124 - NaN
                return bool(value > c)
            return slow(value)

        return greater

    def greater_equal(act: Activation) -> bool:
        value = lf(act)
        vtype = type(value)
        if (vtype is first or vtype is second) and value == value:  # noqa: PLR0124 - NaN
            return bool(value >= c)
        return slow(value)

    return greater_equal


def membership(left: Node, right: Node, label: str) -> Evaluator:
    """``x in list`` / ``x in map``; a constant right side becomes a hash-set lookup."""
    lf = left.fn
    if not right.constant:
        rf = right.fn
        return lambda act: contains(rf(act), lf(act), label)
    container = right.value
    if kind_of(container) == LIST:
        members = MemberSet(container)
        strings = members.strings

        def in_constant_list(act: Activation) -> bool:
            value = lf(act)
            if type(value) is str:
                return value in strings
            return value in members

        return in_constant_list

    def in_constant_map(act: Activation) -> bool:
        value = lf(act)
        if type(value) is str:
            return value in container
        return contains(container, value, label)

    return in_constant_map


def arithmetic(
    op: Callable[[Any, Any, str], Any], left: Node, right: Node, label: str
) -> Evaluator:
    """An arithmetic operator; a constant operand is captured instead of called."""
    lf = left.fn
    rf = right.fn
    if right.constant:
        c = right.value
        return lambda act: op(lf(act), c, label)
    if left.constant:
        c = left.value
        return lambda act: op(c, rf(act), label)
    return lambda act: op(lf(act), rf(act), label)


def require_bool(fn: Evaluator, label: str) -> Evaluator:
    """``fn`` where only a bool may come out (what is left of ``x && true`` after folding)."""

    def require_bool(act: Activation) -> bool:
        value = fn(act)
        if value is True or value is False:
            return value
        raise not_bool(label, value)

    return require_bool


def _absorb(
    error: ConditionEvaluationError, decisive: bool, fn: Evaluator, act: Activation
) -> bool:
    """After an operand failed: the rest decides only if it yields the decisive value."""
    try:
        value: object = fn(act)
    except ConditionEvaluationError:
        raise error from None
    if value is decisive:
        return decisive
    raise error


def logical2(
    decisive: bool, first: Evaluator, second: Evaluator, first_label: str, second_label: str
) -> Evaluator:
    """``a && b`` (decisive False) or ``a || b`` (decisive True) with CEL error absorption."""
    neutral = not decisive

    def logical(act: Activation) -> bool:
        try:
            value: object = first(act)
        except ConditionEvaluationError as exc:
            return _absorb(exc, decisive, second, act)
        if value is neutral:
            other = second(act)
            if other is True or other is False:
                return other
            raise not_bool(second_label, other)
        if value is decisive:
            return decisive
        return _absorb(not_bool(first_label, value), decisive, second, act)

    return logical


def logical_n(decisive: bool, operands: tuple[tuple[Evaluator, str], ...]) -> Evaluator:
    """A chain of three or more ``&&`` or ``||`` operands, CEL error absorption included."""
    neutral = not decisive

    def logical(act: Activation) -> bool:
        error: ConditionEvaluationError | None = None
        for fn, label in operands:
            try:
                value: object = fn(act)
            except ConditionEvaluationError as exc:
                if error is None:
                    error = exc
                continue
            if value is decisive:
                return decisive
            if value is not neutral and error is None:
                error = not_bool(label, value)
        if error is not None:
            raise error
        return neutral

    return logical


def _range(source: Evaluator, act: Activation, label: str) -> Any:
    """The items a comprehension ranges over (a list, or a map's keys)."""
    items = source(act)
    itype = type(items)
    if itype is list or itype is tuple:
        return items
    return iteration_items(items, label)


def quantifier(
    decisive: bool, source: Evaluator, body: Evaluator, var: str, label: str
) -> Evaluator:
    """``all`` (decisive False) and ``exists`` (decisive True), absorbing errors like ``&&``."""
    neutral = not decisive

    def quantifier(act: Activation) -> bool:
        items = _range(source, act, label)
        inner = dict(act)
        error: ConditionEvaluationError | None = None
        for item in items:
            inner[var] = item
            try:
                value: object = body(inner)
            except ConditionEvaluationError as exc:
                if error is None:
                    error = exc
                continue
            if value is decisive:
                return decisive
            if value is not neutral and error is None:
                error = not_bool(label, value)
        if error is not None:
            raise error
        return neutral

    return quantifier


def exists_one(source: Evaluator, body: Evaluator, var: str, label: str) -> Evaluator:
    """``exists_one``: exactly one item satisfies the predicate; errors are not absorbed.

    Each comprehension binds its variable in a private copy of the activation.
    """

    def exists_one(act: Activation) -> bool:
        inner = dict(act)
        count = 0
        for item in _range(source, act, label):
            inner[var] = item
            value = body(inner)
            if value is True:
                count += 1
            elif value is not False:
                raise not_bool(label, value)
        return count == 1

    return exists_one


def filter_items(source: Evaluator, body: Evaluator, var: str, label: str) -> Evaluator:
    """``filter``: the items for which the predicate holds."""

    def filter_items(act: Activation) -> list[Any]:
        inner = dict(act)
        out: list[Any] = []
        for item in _range(source, act, label):
            inner[var] = item
            value = body(inner)
            if value is True:
                out.append(item)
            elif value is not False:
                raise not_bool(label, value)
        return out

    return filter_items


def map_items(
    source: Evaluator, predicate: Evaluator | None, transform: Evaluator, var: str, label: str
) -> Evaluator:
    """``map``: each item transformed, or with a predicate only the items for which it holds."""

    def map_items(act: Activation) -> list[Any]:
        inner = dict(act)
        out: list[Any] = []
        for item in _range(source, act, label):
            inner[var] = item
            if predicate is not None:
                keep = predicate(inner)
                if keep is False:
                    continue
                if keep is not True:
                    raise not_bool(label, keep)
            out.append(transform(inner))
        return out

    return map_items
