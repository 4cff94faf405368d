"""Read barrier-model files (``covenants/barriers/*.yaml``) with a file:line for every problem,
like the covenant loader (whose line-remembering YAML builder it uses)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from services.core.barriers.model import BarrierModel
from services.core.covenant.loader import LineMapBuilder, PathKey, line_of
from services.core.covenant.problems import Problem
from services.core.errors import SchakelError

DEFAULT_BARRIERS = Path(__file__).resolve().parents[3] / "covenants" / "barriers"
HINT = "see covenants/barriers/cannabis.yaml for the format"
_STEP_REF = re.compile(r"^steps\.([0-9]+)\.id: ")


class BarrierModelError(SchakelError):
    """Barrier-model files have problems; ``problems`` lists each with file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class LoadedModels:
    models: list[BarrierModel] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def parse_model(text: str, file: str) -> LoadedModels:
    """One barrier-model document; problems instead of exceptions."""
    result = LoadedModels()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        result.problems.append(Problem(file, line, f"YAML syntax: {exc.problem}", "fix it"))
        return result
    if node is None:
        result.problems.append(Problem(file, 0, "file is empty", HINT))
        return result
    builder = LineMapBuilder(file)
    data = builder.build(node, ())
    result.problems.extend(builder.problems)
    if not isinstance(data, dict):
        result.problems.append(Problem(file, 1, "a barrier model must be a mapping", HINT))
        return result
    try:
        result.models.append(BarrierModel.model_validate(data))
    except ValidationError as exc:
        result.problems.extend(_problems(exc, file, builder.lines))
    return result


def _problems(exc: ValidationError, file: str, lines: Mapping[PathKey, int]) -> list[Problem]:
    found: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc: PathKey = tuple(
            p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or "'" in p))
        )
        message = str(err["msg"]).removeprefix("Value error, ")
        step = _STEP_REF.match(message)
        if step:  # a model-level check names the step it is about
            loc = ("steps", int(step.group(1)), "id")
        dotted = ".".join(str(p) for p in loc) or "model"
        if err["type"] == "missing":
            message = f"{dotted}: required key is missing"
        elif err["type"] == "extra_forbidden":
            message = f"{dotted}: unknown key"
        elif not step:
            message = f"{dotted}: {message}"
        found.append(Problem(file, line_of(lines, loc), message, HINT))
    return found


def load_models(paths: Iterable[Path] = (DEFAULT_BARRIERS,)) -> list[BarrierModel]:
    """Every model in the given files or directories; :class:`BarrierModelError` lists all
    problems of all files at once."""
    result = LoadedModels()
    for path in paths:
        files = sorted(path.glob("*.y*ml")) if path.is_dir() else [path]
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                result.problems.append(
                    Problem(str(file), 0, f"cannot read: {exc.__class__.__name__}", HINT)
                )
                continue
            one = parse_model(text, str(file))
            result.models.extend(one.models)
            result.problems.extend(one.problems)
    names = [m.model for m in result.models]
    for name in sorted({n for n in names if names.count(n) > 1}):
        result.problems.append(Problem("barriers", 0, f"model {name!r} is defined twice", HINT))
    if result.problems:
        raise BarrierModelError(result.problems)
    return result.models
