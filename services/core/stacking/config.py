"""The stacking rule as data: read ``covenants/stacking/*.yaml`` with the line of every value.

A stacking file says when signals about one location raise a stacked-location alert: at least
``min_partner_kinds`` independent kinds of partner within ``window_days``, with a combined
score of at least ``min_score``. Problems come back as :class:`Problem` with file and line, like
the covenant loader's, so ``schakel covenant check`` reports them the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.covenant.model import SLUG
from services.core.covenant.problems import Problem

__all__ = ["AlertTarget", "LoadedStackingConfig", "StackingConfig", "parse_stacking"]

PathKey = tuple[str | int, ...]
MAX_CONFIG_BYTES = 64 * 1024
_TYPE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+$"
Unit = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlertTarget(_Strict):
    """Who publishes the alerts (a supplier party of a covenant) and as which signal type."""

    source: Annotated[str, Field(pattern=SLUG)]
    type: Annotated[str, Field(pattern=_TYPE)]


class StackingConfig(_Strict):
    """One stacking rule (see docs/stacking.md)."""

    stacking: Annotated[str, Field(pattern=SLUG)]
    version: Annotated[str, Field(min_length=1, max_length=32)]
    purpose: Annotated[str, Field(pattern=SLUG)]
    """The covenant purpose a rule's ``stacking: true`` serves; covenants must declare it."""
    alert: AlertTarget
    window_days: Annotated[int, Field(ge=1, le=366)]
    min_partner_kinds: Annotated[int, Field(ge=2, le=10)]
    min_score: Unit
    min_strength: Unit = 0.0
    """Evidence weaker than this does not count towards a stack."""
    default_strength: Unit = 0.5
    """Strength of a signal whose type has no strength field and no entry in ``strength``."""
    strength: dict[Annotated[str, Field(pattern=_TYPE)], Unit] = {}


@dataclass(frozen=True)
class LoadedStackingConfig:
    """A parsed stacking file: the config (None when invalid), its lines and its problems."""

    file: str
    config: StackingConfig | None
    lines: Mapping[PathKey, int] = field(default_factory=dict, repr=False)
    problems: tuple[Problem, ...] = ()

    def line(self, *path: str | int) -> int:
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return 1


class _Unreadable(Exception):  # noqa: N818 - internal carrier, turned into a Problem
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


MAX_DEPTH = 8


def _build(
    node: yaml.Node, path: PathKey, lines: dict[PathKey, int], seen: set[int] | None = None
) -> Any:
    lines[path] = node.start_mark.line + 1
    seen = set() if seen is None else seen
    if isinstance(node, yaml.CollectionNode):
        # an alias (*name) is the same node again: refused ("billion laughs"), as covenants do
        if id(node) in seen or len(path) > MAX_DEPTH:
            raise _Unreadable(
                node.start_mark.line + 1, "YAML aliases and deep nesting are not supported"
            )
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            result[key] = _build(value_node, (*path, key), lines, seen)
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), lines, seen) for i, item in enumerate(node.value)]
    if path == ("version",):
        return node.value  # a label: keep "1.10" as written
    return yaml.SafeLoader("").construct_object(node, deep=True)


def parse_stacking(text: str, file: str) -> LoadedStackingConfig:
    """Parse one stacking file; never raises for bad input, returns problems instead."""
    if len(text) > MAX_CONFIG_BYTES:
        problem = Problem(file, 0, "stacking file is larger than 64 KiB", "keep one rule a file")
        return LoadedStackingConfig(file=file, config=None, problems=(problem,))
    lines: dict[PathKey, int] = {}
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = None if node is None else _build(node, (), lines)
    except _Unreadable as exc:
        problem = Problem(file, exc.line, exc.message, "write each value out where it is used")
        return LoadedStackingConfig(file=file, config=None, problems=(problem,))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = Problem(file, line, f"YAML syntax: {exc}", "fix the YAML syntax")
        return LoadedStackingConfig(file=file, config=None, problems=(problem,))
    if not isinstance(data, dict):
        problem = Problem(
            file, 1, "a stacking file must be a mapping", "start with `stacking: <name>`"
        )
        return LoadedStackingConfig(file=file, config=None, problems=(problem,))
    try:
        config = StackingConfig.model_validate(data)
    except ValidationError as exc:
        problems = tuple(_problem(file, lines, err) for err in exc.errors())
        return LoadedStackingConfig(file=file, config=None, lines=lines, problems=problems)
    return LoadedStackingConfig(file=file, config=config, lines=lines)


def _problem(file: str, lines: Mapping[PathKey, int], err: Any) -> Problem:
    loc: PathKey = tuple(err["loc"])
    key = loc
    while key and key not in lines:
        key = key[:-1]
    where = ".".join(str(p) for p in loc) or "(file)"
    hint = "see docs/stacking.md for the fields of a stacking rule"
    if err["type"] == "extra_forbidden":
        hint = "remove the field or fix its spelling; " + hint
    return Problem(file, lines.get(key, 1), f"{where}: {err['msg']}", hint)
