"""Finding and reading the stacking file: ``<covenants>/stacking/*.yaml`` (exactly one)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from services.core.covenant.loader import LoadedCovenant
from services.core.covenant.problems import Problem
from services.core.schema_registry import SchemaRegistry
from services.core.stacking.check import check_stacking
from services.core.stacking.config import LoadedStackingConfig, StackingConfig, parse_stacking
from services.stacking.errors import StackingError


def stacking_files(covenant_paths: Iterable[Path]) -> list[Path]:
    """Stacking files under the covenant folders given (a file in a ``stacking/`` folder too)."""
    found: list[Path] = []
    for path in covenant_paths:
        if path.is_dir():
            folder = path / "stacking"
            if folder.is_dir():
                found.extend(sorted(f for f in folder.iterdir() if f.suffix in (".yaml", ".yml")))
        elif path.parent.name == "stacking" and path.suffix in (".yaml", ".yml"):
            found.append(path)
    return found


def read_stacking(file: Path) -> LoadedStackingConfig:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StackingError(
            f"{file}: cannot read the stacking file ({exc.__class__.__name__}). Fix: check the "
            "path and encoding (UTF-8)."
        ) from None
    return parse_stacking(text, str(file))


def load_stacking_config(covenant_paths: Iterable[Path]) -> StackingConfig:
    """The one stacking rule the hub runs; a missing, second or invalid file is an error."""
    paths = list(covenant_paths)
    files = stacking_files(paths)
    if len(files) != 1:
        where = ", ".join(str(p) for p in paths)
        raise StackingError(
            f"expected one stacking file in a stacking/ folder of {where}, found {len(files)}. "
            "Fix: keep exactly one (see docs/stacking.md and covenants/stacking/iipsy.yaml)."
        )
    loaded = read_stacking(files[0])
    if loaded.config is None:
        problems = "; ".join(str(p) for p in loaded.problems)
        raise StackingError(
            f"the stacking file is invalid: {problems}. Fix: run `schakel covenant check`."
        )
    return loaded.config


def stacking_problems(
    covenant_paths: Iterable[Path], covenants: Sequence[LoadedCovenant], registry: SchemaRegistry
) -> list[Problem]:
    """The problems of every stacking file under ``covenant_paths`` (for ``covenant check``)."""
    problems: list[Problem] = []
    for file in stacking_files(covenant_paths):
        try:
            loaded = read_stacking(file)
        except StackingError as exc:
            problems.append(Problem(str(file), 0, str(exc), "check the path and encoding"))
            continue
        problems.extend(check_stacking(loaded, covenants, registry))
    return problems
