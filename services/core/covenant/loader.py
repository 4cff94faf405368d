"""Read covenant YAML files into models, remembering the line of every value.

Parsing keeps a map from each value's path (``("rules", 0, "share", "ean")``) to its line, so
that every later problem — structural here, semantic in the checker — names file and line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from services.core.covenant.model import Covenant
from services.core.covenant.problems import Problem

PathKey = tuple[str | int, ...]
MAX_COVENANT_BYTES = 1024 * 1024
MAX_DEPTH = 32
"""Deepest nesting of mappings and lists a covenant may use (real ones need about 6)."""


class _Unreadable(Exception):  # noqa: N818 - internal carrier, turned into a Problem
    """A node the builder refuses (an alias, nesting too deep), with its line."""

    def __init__(self, line: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


@dataclass(frozen=True)
class LoadedCovenant:
    """A covenant model plus where it came from, for error messages and audit."""

    covenant: Covenant
    file: str
    lines: Mapping[PathKey, int] = field(repr=False)
    demo_keys: frozenset[tuple[str, str]] = frozenset()
    """``(partner, key id)`` of the keys added from the demo key file (demo mode only)."""

    def line(self, *path: str | int) -> int:
        """Line of the value at ``path``, or of its nearest ancestor that has one."""
        return line_of(self.lines, path)


def line_of(lines: Mapping[PathKey, int], path: PathKey) -> int:
    """Line of the value at ``path`` in a line map, or of its nearest ancestor."""
    key = tuple(path)
    while key:
        if key in lines:
            return lines[key]
        key = key[:-1]
    return 1


@dataclass
class LoadResult:
    """Everything the loader read: the covenants that parsed and the problems found."""

    covenants: list[LoadedCovenant] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    demo: bool = False
    """Loaded in demo mode: TEST keys are accepted (services/core/demo_keys.py)."""
    demo_key_files: list[str] = field(default_factory=list)
    """The demo key registration files read (demo mode only)."""


class LineMapBuilder:
    """Turns a composed YAML node tree into plain data and a line map."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[PathKey, int] = {}
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.CollectionNode):
            # An alias (*name) is the same node object again: refused, because expanding
            # nested aliases grows exponentially ("billion laughs") and a recursive one forever.
            if id(node) in self._seen:
                raise _Unreadable(
                    node.start_mark.line + 1,
                    "YAML anchors and aliases (&name, *name) are not supported",
                    "write the value out where it is used",
                )
            self._seen.add(id(node))
            if len(path) > MAX_DEPTH:
                raise _Unreadable(
                    node.start_mark.line + 1,
                    f"nested more than {MAX_DEPTH} levels deep",
                    "a covenant needs only a few levels; see docs/covenants.md",
                )
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                if isinstance(key, Iterable) and not isinstance(key, str):
                    key = str(key)
                if key in result:
                    self.problems.append(
                        Problem(
                            self.file,
                            key_node.start_mark.line + 1,
                            f"duplicate key {key!r}",
                            "each key may appear once; merge the two entries",
                        )
                    )
                sub = (*path, key)
                result[key] = self.build(value_node, sub)
                self.lines[sub] = key_node.start_mark.line + 1
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if path == ("version",) and isinstance(node, yaml.ScalarNode):
            return node.value  # keep "2025.10" as written, not the float 2025.1
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        return self._constructor.construct_object(node, deep=True)


def parse_covenant(text: str, file: str) -> LoadResult:
    """Parse one covenant document; never raises for bad input, returns problems instead."""
    result = LoadResult()
    if len(text) > MAX_COVENANT_BYTES:
        result.problems.append(Problem(file, 0, "file is larger than 1 MiB", "split the covenant"))
        return result
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        result.problems.append(
            Problem(file, 0, "YAML nested too deeply to read", "a covenant needs only a few levels")
        )
        return result
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        column = mark.column + 1 if mark else 0
        result.problems.append(
            Problem(
                file,
                line,
                f"YAML syntax: {exc.problem or exc}",
                "fix the YAML syntax",
                column=column,
            )
        )
        return result
    except yaml.YAMLError as exc:
        result.problems.append(Problem(file, 0, f"YAML syntax: {exc}", "fix the YAML syntax"))
        return result
    if node is None:
        result.problems.append(
            Problem(file, 0, "file is empty", "write a covenant; see docs/covenants.md")
        )
        return result
    builder = LineMapBuilder(file)
    try:
        data = builder.build(node, ())
    except _Unreadable as exc:
        result.problems.append(Problem(file, exc.line, exc.message, exc.hint))
        return result
    except yaml.YAMLError as exc:
        result.problems.append(Problem(file, 0, f"YAML value: {exc}", "fix the value"))
        return result
    result.problems.extend(builder.problems)
    if not isinstance(data, dict):
        result.problems.append(
            Problem(file, 1, "a covenant file must be a mapping", "start with `covenant: <id>`")
        )
        return result
    try:
        covenant = Covenant.model_validate(data)
    except ValidationError as exc:
        result.problems.extend(_structure_problems(exc, file, builder.lines))
        return result
    result.covenants.append(LoadedCovenant(covenant, file, builder.lines))
    return result


def _structure_problems(
    exc: ValidationError, file: str, lines: Mapping[PathKey, int]
) -> Iterator[Problem]:
    for err in exc.errors(include_url=False):
        loc = tuple(_yaml_key(p) for p in err["loc"])
        # pydantic appends union-member names ("list[...]", "RegionSelector"); drop them
        loc = tuple(p for p in loc if not (isinstance(p, str) and ("[" in p or p[:1].isupper())))
        dotted = ".".join(str(p) for p in loc) or "covenant"
        kind = err["type"]
        if kind == "missing":
            message, hint = f"{dotted}: required key is missing", "add it; see docs/covenants.md"
        elif kind == "extra_forbidden":
            message, hint = f"{dotted}: unknown key", "remove it or fix its spelling"
        elif kind == "literal_error":
            message, hint = f"{dotted}: {err['msg']}", "use one of the listed values"
        elif kind == "string_pattern_mismatch":
            message = f"{dotted}: does not match {err['ctx']['pattern']}"
            hint = "ids are lower-case slugs (a-z, 0-9, -); municipality codes look like GM0363"
        else:
            message, hint = f"{dotted}: {err['msg']}", "see docs/covenants.md"
        yield Problem(file, line_of(lines, loc), message, hint)


def _yaml_key(part: str | int) -> str | int:
    return {"from_": "from"}.get(part, part) if isinstance(part, str) else part


def load_files(paths: Iterable[Path], *, demo: bool = False) -> LoadResult:
    """Load every covenant file under the given files or directories (``*.yaml``, ``*.yml``).

    Directories are searched recursively, except ``reference/``, ``barriers/``, ``stacking/``
    and ``demo/`` folders, which hold reference data, configuration and the demo's key
    registrations rather than covenants. With ``demo`` (demo mode only) the TEST keys
    registered in the ``demo/`` folder of each directory are added to the parties they name.
    """
    paths = list(paths)
    result = LoadResult(demo=demo)
    for file in covenant_files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(
                Problem(
                    str(file),
                    0,
                    f"cannot read: {exc.__class__.__name__}",
                    "check the path and encoding (UTF-8)",
                )
            )
            continue
        one = parse_covenant(text, str(file))
        result.covenants.extend(one.covenants)
        result.problems.extend(one.problems)
    if demo:
        # imported here: the overlay module builds on this one's LineMapBuilder
        from services.core.covenant.demo_overlay import add_demo_keys  # noqa: PLC0415

        add_demo_keys(result, paths)
    return result


SKIP_DIRS = frozenset({"reference", "barriers", "stacking", "demo"})


def covenant_files(paths: Iterable[Path]) -> list[Path]:
    """The covenant files named by ``paths``, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                f
                for f in sorted(path.rglob("*"))
                if f.suffix in (".yaml", ".yml")
                and f.is_file()
                and not SKIP_DIRS.intersection(f.relative_to(path).parts[:-1])
            )
        else:
            found.append(path)
    return found
