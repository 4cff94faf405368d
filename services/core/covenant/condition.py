"""Covenant rule conditions: CEL expressions compiled once into fast Python closures.

A rule's ``when`` is a CEL expression such as
``data.municipality in regions.riec_nh && data.score >= 0.8``. It is evaluated for every signal
and every rule, so :func:`compile_condition` parses it once with cel-python's CEL grammar
(:mod:`.cel_ast`), checks and translates it into a tree of closures that implements CEL's
semantics exactly (:mod:`.cel_compile`, :mod:`.cel_closures`), and renders the common shapes
into one generated Python function that falls back to those closures whenever anything goes
wrong (:mod:`.cel_fastpath`). A typical condition then evaluates in a fraction of a
microsecond, against tens of microseconds for the reference implementations.

The supported subset follows the CEL spec (and the Rust ``cel`` library where the spec leaves
room): literals of every scalar type, lists and maps; field selection and indexing; ``in``;
arithmetic with int64/uint64 overflow checks; comparisons (numbers compare across int, uint
and double; other types only with themselves); ``&&``/``||``/``!`` with CEL's error absorption;
``?:``; ``has``, ``size``, ``contains``, ``startsWith``, ``endsWith``, ``matches`` (RE2),
``int``, ``uint``, ``double``, ``string``, ``bytes``, ``dyn``, ``timestamp``, ``duration`` and
the timestamp/duration accessors; the macros ``all``, ``exists``, ``exists_one``, ``map`` and
``filter``; and Schakel's own ``postcode4()`` (the postcode area of an address or postcode)
and ``hour()``, ``day()``, ``week()``, ``month()``, ``year()`` (a date or date-time string as
``generalise:<unit>`` shares it).

Which signal fields a condition may read is checked against the signal schemas by
:mod:`.condition_fields` (no tests of identifiers or personal data except presence and
postcode area; no comparisons that can never hold), and what it reveals against what the rules
to each recipient share by :mod:`.condition_granularity` (called by the checker).

What is known at compile time is checked at compile time: unknown names, unknown members of
constants (``regions.nope``), operators applied to literals or results of the wrong type, and
constant parts of the condition that always fail. Such a condition is rejected even where
``&&``/``||`` would have absorbed the error at run time.

Where the Rust library departs from the spec we follow the spec: ``exists``/``all`` absorb
errors like ``||``/``&&``; ``size()`` of a string counts code points; timestamp accessors use
UTC unless given a time zone; ``string()`` of a timestamp ends in ``Z`` and of a duration is
in seconds (``"3600s"``). Timestamps and durations have microsecond resolution (``datetime``).
Not supported: ``type()``, message construction, optional syntax and the extension libraries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.core.covenant.cel_ast import parse
from services.core.covenant.cel_compile import Compiler
from services.core.covenant.cel_values import BOOL, KEY_KINDS, LIST, MAP, article, kind_of
from services.core.errors import ConditionError, ConditionEvaluationError

__all__ = ["CompiledCondition", "compile_condition"]


@dataclass(frozen=True)
class CompiledCondition:
    """A compiled condition; call it with the per-signal variables to get its truth.

    ``references`` lists the dotted variable paths the condition reads (``has(data.x)`` counts
    as reading ``data.x``), so the covenant checker can verify them against signal schemas.
    """

    source: str
    references: frozenset[str]
    _evaluate: Callable[[Mapping[str, Any]], bool] = field(repr=False, compare=False)

    def __call__(self, activation: Mapping[str, Any]) -> bool:
        """Evaluate for one signal.

        Raises :class:`ConditionEvaluationError` when a field is missing, an operator meets
        values of the wrong type, arithmetic fails or the result is not a bool. The message
        names the expression and types involved, never a value from the signal.
        """
        return self._evaluate(activation)


def compile_condition(
    source: str, *, variables: frozenset[str], constants: Mapping[str, Any] | None = None
) -> CompiledCondition:
    """Compile the CEL ``source`` into a :class:`CompiledCondition`.

    ``variables`` are the names supplied with every evaluation (``data``, ``source``, ...);
    ``constants`` are bound now and folded into the condition (``regions`` with its named
    code lists), so a membership test against a constant list becomes a hash-set lookup.

    Raises :class:`ConditionError` (with a 1-based ``column`` where one applies) for syntax
    errors, unknown identifiers or functions, unknown members of constants, unsupported
    features, type errors visible at compile time and over-long or over-deep conditions.
    """
    bound = _freeze_constants(constants or {})
    clash = sorted(variables & bound.keys())
    if clash:
        raise ConditionError(f"'{clash[0]}' is both a variable and a constant")
    expr = parse(source)
    compiler = Compiler(source, variables, bound)
    root = compiler.compile(expr)
    if root.kind is not None and root.kind != BOOL:
        raise ConditionError(
            f"a condition must be a bool, but this is {article(root.kind)}", column=1
        )
    evaluate = compiler.fast.build(root)
    return CompiledCondition(source, frozenset(compiler.references), evaluate)


def _freeze_constants(constants: Mapping[str, Any]) -> dict[str, Any]:
    """A private copy of the constants as CEL values; an error for what CEL cannot hold.

    Copying means later changes to the caller's objects cannot change a compiled condition.
    Sets become lists (sorted where possible, for a stable order).
    """
    frozen: dict[str, Any] = {}
    for name, value in constants.items():
        try:
            frozen[name] = _freeze(value)
        except (ConditionEvaluationError, RecursionError) as exc:
            message = str(exc) if isinstance(exc, ConditionEvaluationError) else "nested too deeply"
            raise ConditionError(f"constant '{name}' is not a CEL value: {message}") from None
    return frozen


def _freeze(value: Any) -> Any:
    """``value`` deep-copied into CEL values (lists and dicts), checked on the way."""
    if isinstance(value, set | frozenset):
        try:
            items = sorted(value)
        except TypeError:
            items = list(value)
        return [_freeze(item) for item in items]
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise ConditionEvaluationError("a timestamp needs a time zone")
    kind = kind_of(value)
    if kind == LIST:
        return [_freeze(item) for item in value]
    if kind == MAP:
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if kind_of(key) not in KEY_KINDS:
                raise ConditionEvaluationError(f"{article(kind_of(key))} cannot be a map key")
            out[key] = _freeze(item)
        return out
    return value
