"""The fast path of a compiled condition: its boolean skeleton as one generated Python function.

Calling a closure costs more than most CEL operations do, so a condition such as
``data.municipality in regions.riec_nh && data.score >= 0.8`` would spend most of its time in
closure calls. The compiler therefore also renders the common node shapes (field paths,
comparisons, ``in``, ``&&``/``||``/``!``, ``?:``, ``has``, ``size`` and the string predicates)
as one Python expression, and this module compiles it into a single function.

The generated function only assumes the happy path. Anything that raises in it (a missing key,
a type error, a non-bool operand) makes it re-run the condition through the exact closure tree
(:mod:`.cel_closures`), which implements CEL's error semantics, including the error absorption
of ``&&`` and ``||``. Without errors both give the same result, because every template here
mirrors a closure factory and the expressions have no side effects.

Safety: the generated source is assembled only from the fixed templates below, generated names
(``k3`` for a bound value, ``v2`` for a temporary) and Python operators picked from fixed
tables. Field names, literals and every other piece of condition text reach the function as
bound values, never as source text; the function runs with no builtins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from services.core.covenant.cel_closures import Activation, Evaluator, Inline, Node
from services.core.covenant.cel_values import BOOL, INT64_MAX, INT64_MIN, article, kind_name
from services.core.errors import ConditionEvaluationError

MAX_INLINE_DEPTH: Final = 24
"""Deeper subtrees are called as closures, keeping the generated source shallow."""

_PYTHON_OPERATORS: Final = {
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
    "==": "==",
    "!=": "!=",
}
_INLINE_ARITHMETIC: Final = {"+": "+", "-": "-", "*": "*"}
_FALLBACK: Final = (
    ConditionEvaluationError,
    KeyError,
    IndexError,
    TypeError,
    ValueError,
    ArithmeticError,
    RecursionError,
)
"""What sends an evaluation from the fast path to the exact closures (which then either give
CEL's answer, for instance by absorbing the error in an ``||``, or raise the proper error)."""


class NotInlinable(Exception):  # noqa: N818 - a signal to the compiler, not an error
    """A node that cannot be rendered: it needs a comprehension variable only a closure has."""


def check_bool(value: Any) -> bool:
    """A bool operand as is; anything else sends the fast path to the exact closures."""
    if value is True or value is False:
        return value
    raise ConditionEvaluationError("not a bool")


def not_a_range(value: Any) -> Any:
    """A comprehension over something other than a list or dict: the closures handle it."""
    raise ConditionEvaluationError("not a list or map")


class FastPath:
    """Binds values to generated names and renders node shapes from fixed templates."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}
        self._temps = 0
        self._scopes: list[tuple[str, str]] = []  # comprehension variables: (CEL, Python) names
        self._helpers: list[str] = []  # generated functions, one per comprehension

    def bind(self, value: Any) -> str:
        """A generated name under which the function sees ``value``."""
        known = self._by_id.get(id(value))
        if known is not None:
            return known
        name = f"k{len(self.names)}"
        self.names[name] = value
        self._by_id[id(value)] = name
        return name

    def temp(self) -> str:
        """A fresh local variable name for an assignment expression."""
        self._temps += 1
        return f"v{self._temps}"

    def push_local(self, name: str) -> str:
        """Enter a comprehension over the CEL variable ``name``; its Python name."""
        self._temps += 1
        local = f"l{self._temps}"
        self._scopes.append((name, local))
        return local

    def pop_local(self) -> None:
        self._scopes.pop()

    def _local(self, name: str) -> str | None:
        for cel_name, local in reversed(self._scopes):
            if cel_name == name:
                return local
        return None

    def operand(self, node: Node) -> Inline:
        """``node`` as an expression: its inline code, its constant value, or a closure call.

        A closure only sees the activation, so a node that reads a comprehension variable
        cannot be called as one: then the enclosing comprehension is not inlined either.
        """
        if node.inline is not None and node.inline.depth <= MAX_INLINE_DEPTH:
            return node.inline
        if node.constant:
            return Inline(self.bind(node.value), 0)
        if any(name in node.deps for name, _ in self._scopes):
            raise NotInlinable
        return Inline(f"{self.bind(node.fn)}(act)", 0)

    def boolean(self, node: Node) -> Inline:
        """``node`` as an expression that is a bool or raises."""
        inline = self.operand(node)
        if node.kind == BOOL:
            return inline
        return Inline(f"{self.bind(check_bool)}({inline.code})", inline.depth + 1)

    def call(self, function: Any, *args: object) -> Inline:
        """``function(args...)``; an argument that is not :class:`Inline` is a value to bind
        (a label, an operator, a field name)."""
        rendered = [a.code if isinstance(a, Inline) else self.bind(a) for a in args]
        depth = 1 + max((a.depth for a in args if isinstance(a, Inline)), default=0)
        return Inline(f"{self.bind(function)}({', '.join(rendered)})", depth)

    def path(self, root: str, fields: tuple[str, ...]) -> Inline:
        """``root.f1.f2`` as nested subscripts (a missing key raises KeyError: the fallback).

        A comprehension variable is a local of the generated function, anything else a key of
        the activation.
        """
        local = self._local(root)
        base = local if local is not None else f"act[{self.bind(root)}]"
        keys = "".join(f"[{self.bind(name)}]" for name in fields)
        return Inline(f"{base}{keys}", 1)

    def compare(
        self, op: str, left: Inline, constant: Any, fast: tuple[type, type], slow: Any
    ) -> Inline:
        """``left OP constant`` when ``left``'s type is one of ``fast`` (and it is not NaN, which
        cannot be ordered), else ``slow(left)``."""
        v = self.temp()
        first, second = (self.bind(t) for t in fast)
        typ = self.bind(type)
        code = (
            f"({v} {_PYTHON_OPERATORS[op]} {self.bind(constant)} "
            f"if ({typ}({v} := {left.code}) is {first} or {typ}({v}) is {second}) and {v} == {v} "
            f"else {self.bind(slow)}({v}))"
        )
        return Inline(code, left.depth + 1)

    def identity(self, negated: bool, left: Inline, constant: Any) -> Inline:
        """``left is constant`` for bool and null literals."""
        op = "is not" if negated else "is"
        return Inline(f"({left.code} {op} {self.bind(constant)})", left.depth + 1)

    def same(self, negated: bool, left: Inline, constant: Any) -> Inline:
        """``left == constant`` for string and bytes literals (never equal to other types)."""
        op = "!=" if negated else "=="
        return Inline(f"({left.code} {op} {self.bind(constant)})", left.depth + 1)

    def equal_number(self, negated: bool, left: Inline, constant: Any) -> Inline:
        """``left == number`` where a bool never equals a number (Python says ``True == 1``)."""
        v = self.temp()
        typ = self.bind(type)
        boolean = self.bind(bool)
        c = self.bind(constant)
        if negated:
            code = f"(({v} := {left.code}) != {c} or {typ}({v}) is {boolean})"
        else:
            code = f"(({v} := {left.code}) == {c} and {typ}({v}) is not {boolean})"
        return Inline(code, left.depth + 1)

    def arithmetic(self, op: str, left: Inline, right: Inline, label: str, slow: Any) -> Inline:
        """``left op right`` inline for two ints (int64-checked) or two doubles, else ``slow``.

        ``/`` is inlined for doubles with a non-zero divisor and for non-negative ints (where
        floor division is CEL's truncating division); ``%`` and everything else call ``slow``.
        Both operands are assigned before any test can short-circuit, so ``slow`` always sees
        them.
        """
        a, b, t, r = self.temp(), self.temp(), self.temp(), self.temp()
        typ, integer, double = self.bind(type), self.bind(int), self.bind(float)
        operands = f"({t} := {typ}({a} := {left.code})) is {typ}({b} := {right.code})"
        fallback = f"{self.bind(slow)}({a}, {b}, {self.bind(label)})"
        depth = 1 + max(left.depth, right.depth)
        if op in _INLINE_ARITHMETIC:
            low, high = self.bind(INT64_MIN), self.bind(INT64_MAX)
            code = (
                f"({r} if {operands} and ({t} is {integer} or {t} is {double}) and "
                f"{low} <= ({r} := {a} {_INLINE_ARITHMETIC[op]} {b}) <= {high} else {fallback})"
            )
            return Inline(code, depth)
        if op == "/":
            code = (
                f"(({a} / {b} if {t} is {double} and {b} != 0.0 else "
                f"({a} // {b} if {t} is {integer} and {a} >= 0 and {b} > 0 else {fallback})) "
                f"if {operands} else {fallback})"
            )
            return Inline(code, depth)
        return self.call(slow, left, right, label)

    def list_display(self, items: list[Inline]) -> Inline:
        """A list literal with computed elements."""
        depth = 1 + max((item.depth for item in items), default=0)
        return Inline(f"[{', '.join(item.code for item in items)}]", depth)

    def negate(self, inline: Inline) -> Inline:
        return Inline(f"(not {inline.code})", inline.depth + 1)

    def _guarded(self, value: Inline, test: str, fast: str, slow: Any) -> Inline:
        """``fast`` if ``type(v) <test>`` holds for the operand ``v``, else ``slow(v)``.

        ``test`` and ``fast`` are rendered by the methods below from bound names only, with
        ``{v}`` standing for the operand.
        """
        v = self.temp()
        code = (
            f"({fast.format(v=v)} if {self.bind(type)}({v} := {value.code}) {test} "
            f"else {self.bind(slow)}({v}))"
        )
        return Inline(code, value.depth + 1)

    def member_list(self, value: Inline, strings: frozenset[str], members: Any) -> Inline:
        """``value in <constant list>``: a string set first, then the typed member set."""
        return self._guarded(
            value,
            f"is {self.bind(str)}",
            f"{{v}} in {self.bind(strings)}",
            members.__contains__,
        )

    def member_map(self, value: Inline, mapping: dict[Any, Any], slow: Any) -> Inline:
        """``value in <constant map>`` for string keys; other key types take ``slow``."""
        return self._guarded(value, f"is {self.bind(str)}", f"{{v}} in {self.bind(mapping)}", slow)

    def has(self, value: Inline, field: str, slow: Any) -> Inline:
        """``has(value.field)`` on a dict; other containers take ``slow``."""
        return self._guarded(value, f"is {self.bind(dict)}", f"{self.bind(field)} in {{v}}", slow)

    def size(self, value: Inline, slow: Any) -> Inline:
        sized = self.bind(frozenset({str, list, dict}))
        return self._guarded(value, f"in {sized}", f"{self.bind(len)}({{v}})", slow)

    def string_method(self, value: Inline, method: Any, argument: str, slow: Any) -> Inline:
        """``value.method(argument)`` for a string ``value`` and a literal argument."""
        call = f"{self.bind(method)}({{v}}, {self.bind(argument)})"
        return self._guarded(value, f"is {self.bind(str)}", call, slow)

    def search(self, value: Inline, search: Any, slow: Any) -> Inline:
        """``value.matches(<literal pattern>)`` with the compiled RE2 ``search``."""
        call = f"{self.bind(search)}({{v}}) is not None"
        return self._guarded(value, f"is {self.bind(str)}", call, slow)

    def logical(self, op: str, operands: list[Inline]) -> Inline:
        joiner = " or " if op == "||" else " and "
        depth = 1 + max(o.depth for o in operands)
        return Inline(f"({joiner.join(o.code for o in operands)})", depth)

    def conditional(self, condition: Inline, then: Inline, otherwise: Inline) -> Inline:
        depth = 1 + max(condition.depth, then.depth, otherwise.depth)
        return Inline(f"({then.code} if {condition.code} else {otherwise.code})", depth)

    def comprehension(
        self, macro: str, variable: str, local: str, source: Inline, bodies: list[Node]
    ) -> Inline:
        """A comprehension macro as a generated function over its range (a list or a dict).

        The function sees the activation and its loop variable; a body that needs the
        variable of an enclosing comprehension (or calls a closure that reads this one's)
        is not inlinable, and the macro then runs as a closure.
        """
        outer = {name for name, _ in self._scopes}
        if any((body.deps - {variable}) & outer for body in bodies):
            raise NotInlinable
        self._scopes.append((variable, local))
        try:
            transform = self.operand(bodies[-1]).code if macro == "map" else ""
            if macro != "map" or len(bodies) == 2:
                predicate: str | None = self.boolean(bodies[0]).code
            else:
                predicate = None
        finally:
            self._scopes.pop()
        helper = f"m{len(self._helpers)}"
        loop = f"    for {local} in r:\n"
        if macro == "exists":
            body = f"{loop}        if {predicate}:\n            return True\n    return False\n"
        elif macro == "all":
            body = f"{loop}        if not {predicate}:\n            return False\n    return True\n"
        elif macro == "exists_one":
            body = (
                f"    n = 0\n{loop}        if {predicate}:\n            n += 1\n    return n == 1\n"
            )
        elif macro == "filter":
            body = f"    return [{local} for {local} in r if {predicate}]\n"
        elif predicate is None:
            body = f"    return [{transform} for {local} in r]\n"
        else:
            body = f"    return [{transform} for {local} in r if {predicate}]\n"
        self._helpers.append(f"def {helper}(act, r):\n{body}")
        v = self.temp()
        ranges = self.bind(frozenset({list, dict}))
        code = (
            f"({helper}(act, {v}) if {self.bind(type)}({v} := {source.code}) in {ranges} "
            f"else {self.bind(not_a_range)}({v}))"
        )
        return Inline(code, source.depth + 1)

    def build(self, root: Node) -> Callable[[Activation], bool]:
        """The condition's evaluator: the generated fast path backed by the exact closures.

        Either way the result is a bool or a :class:`ConditionEvaluationError`.
        """
        exact = exact_evaluator(root.fn)
        if root.inline is None:
            return exact
        source = "".join(self._helpers) + (
            "def condition(act):\n"
            "    try:\n"
            f"        result = {root.inline.code}\n"
            "    except fallback:\n"
            "        return exact(act)\n"
            "    if result is True or result is False:\n"
            "        return result\n"
            "    return exact(act)\n"
        )
        namespace: dict[str, Any] = {
            "__builtins__": {},
            **self.names,
            "fallback": _FALLBACK,
            "exact": exact,
        }
        # The source is built only from this module's templates and generated names (see the
        # module docstring); condition text reaches it solely through ``namespace``.
        exec(compile(source, "<cel condition>", "exec"), namespace)  # noqa: S102
        function: Callable[[Activation], bool] = namespace["condition"]
        return function


def exact_evaluator(fn: Evaluator) -> Callable[[Activation], bool]:
    """``fn`` held to the condition contract: a bool, or a :class:`ConditionEvaluationError`."""

    def exact(act: Activation) -> bool:
        try:
            result = fn(act)
        except (TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
            # Defensive: data outside the JSON value space (or absurdly deep) reached an
            # operator. Report it without the cause, whose message may carry a value.
            raise ConditionEvaluationError(
                f"condition could not be evaluated ({type(exc).__name__})"
            ) from None
        if result is True or result is False:
            return result
        raise ConditionEvaluationError(f"condition yields {article(kind_name(result))}, not a bool")

    return exact
