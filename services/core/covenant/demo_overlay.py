"""The demo's key registrations: TEST keys kept out of the covenant files, read in demo mode only.

The shipped covenants register no keys for the demo partners. Their TEST keys (derived from a
public seed, :mod:`services.core.demo_keys`) are registered in ``covenants/demo/keys.yaml``::

    demo_keys:
      liander: {id: demo-liander, ed25519: "uANtdJHc…"}

Only a hub in demo mode (``schakel up --demo``, ``SCHAKEL_DEMO=1``) reads that folder; it
adds each key to the party of that id in every covenant version naming it. A deployment
never loads the folder, and its checker refuses a TEST key wherever one is registered.
Every entry must be the TEST key of its partner under the id ``demo-<partner>``, so the file
cannot smuggle a real key past the covenant manager (real keys go into the covenant file:
``schakel covenant add-key``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.core.covenant.loader import (
    LineMapBuilder,
    LoadedCovenant,
    LoadResult,
    PathKey,
    line_of,
)
from services.core.covenant.model import SLUG, PartyKey
from services.core.covenant.problems import Problem
from services.core.demo_keys import demo_key_id, demo_public_key

DEMO_DIR = "demo"
"""The folder, directly in a covenants directory, that holds the demo key registrations."""


class DemoKeyFile(BaseModel):
    """One demo key registration file: partner id -> its TEST key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    demo_keys: Annotated[dict[Annotated[str, Field(pattern=SLUG)], PartyKey], Field(min_length=1)]


def demo_key_files(paths: Iterable[Path]) -> list[Path]:
    """The demo key files of the covenant directories among ``paths`` (``<dir>/demo/*.yaml``)."""
    found: list[Path] = []
    for path in paths:
        folder = path / DEMO_DIR
        if path.is_dir() and folder.is_dir():
            found.extend(f for f in sorted(folder.glob("*.y*ml")) if f.is_file())
    return found


def parse_demo_keys(text: str, file: str) -> tuple[dict[str, PartyKey], list[Problem]]:
    """The TEST keys a demo key file registers, and every problem with it (file and line)."""
    problems: list[Problem] = []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        builder = LineMapBuilder(file)
        data = builder.build(node, ()) if node is not None else None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        return {}, [Problem(file, 0, f"cannot read the demo key file: {exc}", "fix the YAML")]
    problems.extend(builder.problems)
    try:
        parsed = DemoKeyFile.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc: PathKey = tuple(err["loc"])
            dotted = ".".join(str(p) for p in loc) or "file"
            problems.append(
                Problem(
                    file,
                    line_of(builder.lines, loc),
                    f"{dotted}: {err['msg']}",
                    "write `demo_keys:` with `PARTNER: {id: demo-PARTNER, ed25519: KEY}` entries",
                )
            )
        return {}, problems
    keys: dict[str, PartyKey] = {}
    for partner, key in parsed.demo_keys.items():
        line = line_of(builder.lines, ("demo_keys", partner))
        if key.ed25519 != demo_public_key(partner):
            problems.append(
                Problem(
                    file,
                    line,
                    f"the key registered for {partner!r} is not its TEST key: this file holds "
                    "only TEST keys derived from the public demo seed",
                    "register a real key in the covenant file (schakel covenant add-key); "
                    f"the TEST key of {partner!r} is {demo_public_key(partner)}",
                )
            )
            continue
        if key.id != demo_key_id(partner):
            problems.append(
                Problem(
                    file,
                    line,
                    f"the TEST key of {partner!r} must have the id {demo_key_id(partner)!r}",
                    "demo key ids are demo-<partner>, unique across partners",
                )
            )
            continue
        keys[partner] = key
    return keys, problems


def add_demo_keys(result: LoadResult, paths: Iterable[Path]) -> None:
    """Read the demo key files of ``paths`` into ``result``: each TEST key is added to the
    party of its partner in every covenant version naming it (unless already registered)."""
    keys: dict[str, PartyKey] = {}
    for file in demo_key_files(paths):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(
                Problem(str(file), 0, f"cannot read: {exc.__class__.__name__}", "check the file")
            )
            continue
        found, problems = parse_demo_keys(text, str(file))
        result.problems.extend(problems)
        result.demo_key_files.append(str(file))
        for partner, key in found.items():
            if partner in keys:
                result.problems.append(
                    Problem(
                        str(file),
                        0,
                        f"{partner!r} has a TEST key in two demo key files",
                        "register it once",
                    )
                )
            keys[partner] = key
    result.covenants[:] = [with_keys(item, keys) for item in result.covenants]


def with_keys(item: LoadedCovenant, keys: Mapping[str, PartyKey]) -> LoadedCovenant:
    """``item`` with ``keys`` (partner -> key) added to the parties it names."""
    cov = item.covenant
    parties = dict(cov.parties)
    lines = dict(item.lines)
    added: set[tuple[str, str]] = set()
    for partner, key in keys.items():
        party = parties.get(partner)
        if party is None or any(k.ed25519 == key.ed25519 for k in party.public_keys):
            continue
        index = len(party.public_keys)
        parties[partner] = party.model_copy(update={"public_keys": [*party.public_keys, key]})
        lines[("parties", partner, "public_keys", index)] = item.line("parties", partner)
        added.add((partner, key.id))
    if not added:
        return item
    return replace(
        item,
        covenant=cov.model_copy(update={"parties": parties}),
        lines=lines,
        demo_keys=item.demo_keys | added,
    )
