"""Parse CEL source into a small, bounded syntax tree.

cel-python's parser (its Lark grammar of the CEL spec) does the parsing; this module turns the
Lark tree into the handful of node types the condition compiler works with, decodes literals
(escapes, int64/uint64 ranges), flattens ``&&``/``||`` chains and enforces the limits that keep
hostile input cheap: a maximum source length and a maximum nesting depth. The walk over the
Lark tree is iterative, so very deep input fails with :class:`ConditionError`, never with a
``RecursionError``.

Positions (``start``/``end``) are character offsets into the source; an error's ``column`` is
``start + 1``, i.e. 1-based within the whole expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from celpy.celparser import CELParseError, CELParser
from lark import Token, Tree
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

from services.core.covenant.cel_values import INT64_MAX, INT64_MIN, UINT64_MAX, UInt
from services.core.errors import ConditionError

MAX_SOURCE_LENGTH: Final = 4_000
"""Longer conditions are rejected; real covenant conditions are a line or two."""

MAX_DEPTH: Final = 100
"""Deepest nesting of the syntax tree (``&&``/``||`` chains count once, however long)."""


@dataclass(frozen=True, slots=True, eq=False)
class Expr:
    """A node of the syntax tree: where it is in the source, and how deep its subtree is."""

    start: int
    end: int
    depth: int


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Expr):
    value: Any


@dataclass(frozen=True, slots=True, eq=False)
class Ident(Expr):
    name: str


@dataclass(frozen=True, slots=True, eq=False)
class Select(Expr):
    """``operand.field``."""

    operand: Expr
    field: str


@dataclass(frozen=True, slots=True, eq=False)
class Index(Expr):
    """``operand[index]``."""

    operand: Expr
    index: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Call(Expr):
    """``function(args)`` when ``target`` is None, else ``target.function(args)``."""

    function: str
    target: Expr | None
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False)
class MapExpr(Expr):
    entries: tuple[tuple[Expr, Expr], ...]


@dataclass(frozen=True, slots=True, eq=False)
class Unary(Expr):
    """``!operand`` or ``-operand``."""

    op: str
    operand: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Binary(Expr):
    """An arithmetic or relational operator (``+ - * / % == != < <= > >= in``)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True, eq=False)
class Logical(Expr):
    """A flattened chain of ``&&`` or ``||`` (two or more operands)."""

    op: str
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True, eq=False)
class Conditional(Expr):
    """``condition ? then : otherwise``."""

    condition: Expr
    then: Expr
    otherwise: Expr


def compound_parts(expr: Expr) -> tuple[Expr, ...] | None:
    """The sub-expressions of a node that only combines them (``&&``/``||`` chains,
    ``?:``, list and map literals), in source order; ``None`` for any other node. Walkers
    that treat these nodes alike recurse through this instead of spelling each out."""
    if isinstance(expr, Logical):
        return expr.operands
    if isinstance(expr, Conditional):
        return (expr.condition, expr.then, expr.otherwise)
    if isinstance(expr, ListExpr):
        return expr.items
    if isinstance(expr, MapExpr):
        return tuple(part for entry in expr.entries for part in entry)
    return None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A left operand waiting for its operator's right operand (``relation_lt`` and kin)."""

    op: str
    left: Expr


@dataclass(frozen=True, slots=True)
class _Sequence:
    """An ``exprlist``/``mapinits``: expressions in order."""

    items: tuple[Expr, ...]


_Built = Expr | Token | _Pending | _Sequence | str

_OPERATORS: Final = {
    "relation_lt": "<",
    "relation_le": "<=",
    "relation_gt": ">",
    "relation_ge": ">=",
    "relation_eq": "==",
    "relation_ne": "!=",
    "relation_in": "in",
    "addition_add": "+",
    "addition_sub": "-",
    "multiplication_mul": "*",
    "multiplication_div": "/",
    "multiplication_mod": "%",
}
_PASS_THROUGH: Final = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
        "paren_expr",
    }
)
_UNSUPPORTED: Final = {
    "member_object": "message construction (Type{field: value}) is not supported",
    "fieldinits": "message construction (Type{field: value}) is not supported",
    "dot_ident": "leading-dot identifiers (.name) are not supported",
    "dot_ident_arg": "leading-dot function calls (.name()) are not supported",
}


def parse(source: str) -> Expr:
    """The syntax tree of ``source``; :class:`ConditionError` with a column if it is invalid."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise ConditionError(
            f"condition is {len(source)} characters long; the limit is {MAX_SOURCE_LENGTH}",
            column=MAX_SOURCE_LENGTH + 1,
        )
    if "\x00" in source:
        raise ConditionError("condition contains a NUL character", column=source.index("\x00") + 1)
    try:
        tree = CELParser().parse(source)
    except CELParseError as exc:
        raise _syntax_error(source, exc) from None
    except LarkError as exc:  # anything else the grammar rejects
        raise ConditionError(f"syntax error: {type(exc).__name__}", column=None) from None
    return _Builder(source).build(tree)


def _offset(source: str, line: int | None, column: int | None) -> int | None:
    """1-based character offset of a Lark (line, column) position."""
    if line is None or column is None or line < 1 or column < 1:
        return None
    lines = source.split("\n")
    return sum(len(text) + 1 for text in lines[: line - 1]) + column


def _syntax_error(source: str, exc: CELParseError) -> ConditionError:
    cause = exc.__context__
    if isinstance(cause, UnexpectedToken):
        token = cause.token
        if token.type == "$END":
            return ConditionError(
                "syntax error: the condition ends too early", column=len(source) + 1
            )
        column = _offset(source, cause.line, cause.column)
        return ConditionError(f"syntax error: unexpected {str(token)!r}", column=column)
    if isinstance(cause, UnexpectedCharacters):
        column = _offset(source, cause.line, cause.column)
        char = source[column - 1] if column is not None and column <= len(source) else "?"
        return ConditionError(f"syntax error: unexpected character {char!r}", column=column)
    if isinstance(cause, UnexpectedEOF):
        return ConditionError("syntax error: the condition ends too early", column=len(source) + 1)
    return ConditionError("syntax error", column=_offset(source, exc.line, exc.column))


class _Builder:
    """Turns a Lark tree into :class:`Expr` nodes bottom-up, with an explicit stack."""

    def __init__(self, source: str) -> None:
        self.source = source

    def build(self, root: Tree[Token]) -> Expr:
        built: list[_Built] = []
        stack: list[tuple[Tree[Token] | Token, bool]] = [(root, False)]
        while stack:
            node, children_done = stack.pop()
            if isinstance(node, Token):
                built.append(node)
            elif not children_done:
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(node.children))
            else:
                count = len(node.children)
                args = built[len(built) - count :]
                del built[len(built) - count :]
                built.append(self._node(node, args))
        result = built[0]
        if not isinstance(result, Expr):  # pragma: no cover - the grammar's start rule is expr
            raise ConditionError("syntax error", column=1)
        return result

    def _error(self, message: str, start: int) -> ConditionError:
        return ConditionError(message, column=start + 1)

    def _expr(self, item: _Built, tree: Tree[Token]) -> Expr:
        if isinstance(item, Expr):
            return item
        raise self._error("syntax error", tree.meta.start_pos)  # pragma: no cover - grammar

    def _make(
        self, cls: type[Expr], tree: Tree[Token], children: tuple[Expr, ...], *fields: Any
    ) -> Expr:
        depth = 1 + max((child.depth for child in children), default=0)
        start, end = tree.meta.start_pos, tree.meta.end_pos
        if depth > MAX_DEPTH:
            raise self._error(
                f"condition is nested too deeply (more than {MAX_DEPTH} levels)", start
            )
        return cls(start, end, depth, *fields)

    def _node(self, tree: Tree[Token], args: list[_Built]) -> _Built:  # noqa: PLR0911, PLR0912
        kind = tree.data
        if kind in _PASS_THROUGH and len(args) == 1:
            return args[0]
        if kind in _UNSUPPORTED:
            raise self._error(_UNSUPPORTED[kind], tree.meta.start_pos)
        if kind == "literal":
            token = args[0]
            assert isinstance(token, Token)  # noqa: S101 - the grammar's literal rule holds a token
            return self._make(Literal, tree, (), self._literal(token))
        if kind == "ident":
            return self._make(Ident, tree, (), str(args[0]))
        if kind in ("exprlist", "mapinits"):
            return _Sequence(tuple(self._expr(a, tree) for a in args))
        if kind in _OPERATORS:
            return _Pending(_OPERATORS[kind], self._expr(args[0], tree))
        if kind == "unary_not":
            return "!"
        if kind == "unary_neg":
            return "-"
        if kind == "unary":
            operand = self._expr(args[1], tree)
            return self._make(Unary, tree, (operand,), str(args[0]), operand)
        if kind in ("relation", "addition", "multiplication"):
            pending, right = args
            assert isinstance(pending, _Pending)  # noqa: S101 - grammar shape
            left = pending.left
            right_expr = self._expr(right, tree)
            return self._make(Binary, tree, (left, right_expr), pending.op, left, right_expr)
        if kind in ("conditionalor", "conditionaland"):
            return self._logical("||" if kind == "conditionalor" else "&&", tree, args)
        if kind == "expr":
            cond, then, otherwise = (self._expr(a, tree) for a in args)
            return self._make(Conditional, tree, (cond, then, otherwise), cond, then, otherwise)
        if kind == "member_dot":
            operand = self._expr(args[0], tree)
            return self._make(Select, tree, (operand,), operand, str(args[1]))
        if kind == "member_index":
            operand, index = (self._expr(a, tree) for a in args)
            return self._make(Index, tree, (operand, index), operand, index)
        if kind in ("member_dot_arg", "ident_arg"):
            return self._call(kind, tree, args)
        if kind == "list_lit":
            items = args[0].items if args and isinstance(args[0], _Sequence) else ()
            return self._make(ListExpr, tree, items, items)
        if kind == "map_lit":
            flat = args[0].items if args and isinstance(args[0], _Sequence) else ()
            entries = tuple(zip(flat[::2], flat[1::2], strict=True))
            return self._make(MapExpr, tree, flat, entries)
        raise self._error(f"unsupported syntax ({kind})", tree.meta.start_pos)  # pragma: no cover

    def _logical(self, op: str, tree: Tree[Token], args: list[_Built]) -> Expr:
        left, right = (self._expr(a, tree) for a in args)
        operands: tuple[Expr, ...]
        if isinstance(left, Logical) and left.op == op:
            operands = (*left.operands, right)
            children: tuple[Expr, ...] = operands
        else:
            operands = (left, right)
            children = operands
        depth = 1 + max(child.depth for child in children)
        if depth > MAX_DEPTH:
            raise self._error(
                f"condition is nested too deeply (more than {MAX_DEPTH} levels)",
                tree.meta.start_pos,
            )
        return Logical(tree.meta.start_pos, tree.meta.end_pos, depth, op, operands)

    def _call(self, kind: str, tree: Tree[Token], args: list[_Built]) -> Expr:
        target: Expr | None = None
        if kind == "member_dot_arg":
            target = self._expr(args[0], tree)
            args = args[1:]
        name = str(args[0])
        rest = args[1:]
        call_args = rest[0].items if rest and isinstance(rest[0], _Sequence) else ()
        children = call_args if target is None else (target, *call_args)
        return self._make(Call, tree, children, name, target, call_args)

    def _literal(self, token: Token) -> Any:  # noqa: PLR0911 - a case per literal type
        text = str(token)
        start = token.start_pos or 0
        kind = token.type
        if kind == "BOOL_LIT":
            return text == "true"
        if kind == "NULL_LIT":
            return None
        if kind == "INT_LIT":
            value = _integer(text)
            if not INT64_MIN <= value <= INT64_MAX:
                raise self._error("integer literal out of int64 range", start)
            return value
        if kind == "UINT_LIT":
            value = _integer(text[:-1])
            if not 0 <= value <= UINT64_MAX:
                raise self._error("unsigned literal out of uint64 range", start)
            return UInt(value)
        if kind == "FLOAT_LIT":
            return float(text)
        if kind in ("STRING_LIT", "MLSTRING_LIT"):
            return _decode_string(text, start, as_bytes=False)
        if kind == "BYTES_LIT":
            return _decode_string(text[1:], start + 1, as_bytes=True)
        raise self._error(f"unsupported literal ({kind})", start)  # pragma: no cover


def _integer(text: str) -> int:
    negative = text.startswith("-")
    digits = text[1:] if negative else text
    value = int(digits[2:], 16) if digits[:2] in ("0x", "0X") else int(digits, 10)
    return -value if negative else value


_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def _decode_string(text: str, start: int, *, as_bytes: bool) -> str | bytes:
    """Decode a CEL string or bytes literal (``text`` includes its quotes and ``r`` prefix)."""
    raw = text[:1] in ("r", "R")
    if raw:
        text = text[1:]
        start += 1
    quote = text[:3] if text[:3] in ('"""', "'''") else text[:1]
    body = text[len(quote) : len(text) - len(quote)]
    offset = start + len(quote)
    if raw:
        return body.encode("utf-8") if as_bytes else body
    pieces: list[bytes] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            pieces.append(char.encode("utf-8"))
            i += 1
            continue
        code, width, is_byte = _escape(body, i, offset, as_bytes=as_bytes)
        if is_byte:
            pieces.append(bytes([code]))
        else:
            try:
                pieces.append(chr(code).encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate
                raise ConditionError(
                    "escape is not a Unicode scalar value", column=offset + i + 1
                ) from None
        i += width
    data = b"".join(pieces)
    return data if as_bytes else data.decode("utf-8")


def _escape(body: str, i: int, offset: int, *, as_bytes: bool) -> tuple[int, int, bool]:
    """``(code, width, is_byte)`` of the escape sequence at ``body[i]`` (a backslash)."""
    column = offset + i + 1
    kind = body[i + 1] if i + 1 < len(body) else ""
    if kind in _SIMPLE_ESCAPES:
        return ord(_SIMPLE_ESCAPES[kind]), 2, False
    if kind in ("x", "X"):
        digits = body[i + 2 : i + 4]
        if len(digits) == 2 and set(digits) <= _HEX:
            return int(digits, 16), 4, as_bytes
    elif kind in ("u", "U") and not as_bytes:
        count = 4 if kind == "u" else 8
        digits = body[i + 2 : i + 2 + count]
        if len(digits) == count and set(digits) <= _HEX:
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise ConditionError("escape is not a Unicode scalar value", column=column)
            return code, 2 + count, False
    elif kind and kind in "0123":
        digits = body[i + 1 : i + 4]
        if len(digits) == 3 and set(digits) <= set("01234567"):
            return int(digits, 8), 4, as_bytes
    raise ConditionError("invalid escape sequence in string literal", column=column)
