"""Read a barrier-plan data file (``covenants/barriers/plan/*.yaml``): barriers partners raised,
entered as data next to the barrier models rather than one by one in the workplace. Every
problem names the file and line, like the covenant and barrier-model loaders.

The format (see ``covenants/barriers/plan/example.yaml``)::

    illustration: "..."          # optional: says the file is an example
    barriers:
      - model: cannabis
        step: cannabis.acquire_location
        partner: lto-meldpunt     # a party id of the covenants
        kind: campaign            # campaign, check, screening, closure, other
        municipality: GM0361      # a CBS code
        since: 2026-03-01
        description: Letters to farmers about renting out empty barns

This module only reads the shape; whether the step, partner and municipality are known and
within the loader's scope is the workplace's check (:mod:`services.riec.plan_load`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.covenant.loader import LineMapBuilder, PathKey, _Unreadable, line_of
from services.core.covenant.problems import Problem

HINT = "see covenants/barriers/plan/example.yaml for the format"
MAX_BYTES = 1 << 20
MAX_BARRIERS = 10_000


class PlannedBarrier(BaseModel):
    """One barrier as a plan file states it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    model: Annotated[str, Field(min_length=1, max_length=100)]
    step: Annotated[str, Field(min_length=1, max_length=200)]
    partner: Annotated[str, Field(min_length=1, max_length=100)]
    kind: Annotated[str, Field(min_length=1, max_length=50)]
    municipality: Annotated[str, Field(pattern=r"^GM[0-9]{4}$")]
    since: date
    description: Annotated[str, Field(min_length=1, max_length=500)]


class PlanFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    illustration: Annotated[str, Field(min_length=1, max_length=2000)] | None = None
    barriers: Annotated[list[PlannedBarrier], Field(max_length=MAX_BARRIERS)]


@dataclass
class LoadedPlan:
    barriers: list[tuple[int, PlannedBarrier]] = field(default_factory=list)
    """Each barrier with the line it starts on."""
    illustration: str | None = None
    problems: list[Problem] = field(default_factory=list)


def parse_plan(text: str, file: str) -> LoadedPlan:
    """One plan file; problems (with lines) instead of exceptions."""
    result = LoadedPlan()
    data, lines = _tree(text, file, result.problems)
    if result.problems:
        return result
    try:
        parsed = PlanFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            dotted = ".".join(str(p) for p in loc) or "file"
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "missing":
                message = "required key is missing"
            elif err["type"] == "extra_forbidden":
                message = "unknown key"
            result.problems.append(Problem(file, line_of(lines, loc), f"{dotted}: {message}", HINT))
        return result
    result.illustration = parsed.illustration
    result.barriers = [(line_of(lines, ("barriers", n)), b) for n, b in enumerate(parsed.barriers)]
    return result


def _tree(text: str, file: str, problems: list[Problem]) -> tuple[Any, dict[PathKey, int]]:
    """The file's data and line map; what is wrong goes into ``problems``."""
    if len(text) > MAX_BYTES:
        problems.append(Problem(file, 0, "file is larger than 1 MiB", "split it"))
        return None, {}
    node = _compose(text, file, problems)
    if problems:
        return None, {}
    if node is None:
        problems.append(Problem(file, 0, "file is empty", HINT))
        return None, {}
    builder = LineMapBuilder(file)
    try:
        data = builder.build(node, ())
    except _Unreadable as exc:
        problems.append(Problem(file, exc.line, exc.message, exc.hint))
        return None, {}
    except yaml.YAMLError as exc:  # the problem only: the message would quote the file's line
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problems.append(Problem(file, line, f"YAML value: {_what(exc)}", "fix the value"))
        return None, {}
    problems.extend(builder.problems)
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, "a plan file must be a mapping", HINT))
    return data, builder.lines


def _compose(text: str, file: str, problems: list[Problem]) -> yaml.Node | None:
    """The file's YAML node tree (``None``: empty, or what is wrong is in ``problems``)."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        problems.append(Problem(file, 0, "YAML nested too deeply to read", HINT))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problems.append(Problem(file, line, f"YAML syntax: {exc.problem}", "fix it"))
    except yaml.YAMLError as exc:  # e.g. a NUL or other character YAML does not allow
        problems.append(Problem(file, 0, f"YAML cannot read it: {_what(exc)}", "fix it"))
    return None


def _what(exc: yaml.YAMLError) -> str:
    """What is wrong, without the excerpt of the file a YAML error message quotes."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        return exc.problem
    if isinstance(exc, yaml.reader.ReaderError):
        return f"character #x{exc.character:04x} is not allowed (position {exc.position})"
    return type(exc).__name__
