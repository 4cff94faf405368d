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
)


def check_bool(value: Any) -> bool:
    """A bool operand as is; anything else sends the fast path to the exact closures."""
    if value is True or value is False:
        return value
    raise ConditionEvaluationError("not a bool")


class FastPath:
    """Binds values to generated names and renders node shapes from fixed templates."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self._by_id: dict[int, str] = {}
        self._temps = 0

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

    def operand(self, node: Node) -> Inline:
        """``node`` as an expression: its inline code, its constant value, or a closure call."""
        if node.inline is not None and node.inline.depth <= MAX_INLINE_DEPTH:
            return node.inline
        if node.constant:
            return Inline(self.bind(node.value), 0)
        return Inline(f"{self.bind(node.fn)}(act)", 0)

    def boolean(self, node: Node) -> Inline:
        """``node`` as an expression that is a bool or raises."""
        inline = self.operand(node)
        if node.kind == BOOL:
            return inline
        return Inline(f"{self.bind(check_bool)}({inline.code})", inline.depth + 1)

    def call(self, function: Any, *args: Inline | str) -> Inline:
        """``function(args...)``; a ``str`` argument is a value to bind (a label, an operator)."""
        rendered = [a.code if isinstance(a, Inline) else self.bind(a) for a in args]
        depth = 1 + max((a.depth for a in args if isinstance(a, Inline)), default=0)
        return Inline(f"{self.bind(function)}({', '.join(rendered)})", depth)

    def path(self, root: str, fields: tuple[str, ...]) -> Inline:
        keys = "".join(f"[{self.bind(name)}]" for name in (root, *fields))
        return Inline(f"act{keys}", 1)

    def compare(
        self, op: str, left: Inline, constant: Any, fast: tuple[type, type], slow: Any
    ) -> Inline:
        """``left OP constant`` when ``left``'s type is one of ``fast``, else ``slow(left)``."""
        v = self.temp()
        first, second = (self.bind(t) for t in fast)
        typ = self.bind(type)
        code = (
            f"({v} {_PYTHON_OPERATORS[op]} {self.bind(constant)} "
            f"if ({typ}({v} := {left.code}) is {first} or {typ}({v}) is {second}) "
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
                f"({a} / {b} if {operands} and {t} is {double} and {b} != 0.0 else "
                f"({a} // {b} if {t} is {integer} and {a} >= 0 and {b} > 0 else {fallback}))"
            )
            return Inline(code, depth)
        return self.call(slow, left, right, label)

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

    def build(self, root: Node) -> Callable[[Activation], bool]:
        """The condition's evaluator: the generated fast path backed by the exact closures.

        Either way the result is a bool or a :class:`ConditionEvaluationError`.
        """
        exact = _exact(root.fn)
        if root.inline is None:
            return exact
        source = (
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


def _exact(fn: Evaluator) -> Callable[[Activation], bool]:
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
