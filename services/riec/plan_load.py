"""Loading barriers into the joint plan from a data file (``schakel riec load-barriers``).

The file is read by :func:`services.core.barriers.plan_file.parse_plan`; each barrier is then
checked as if the loading user entered it in the workplace — a known model, step, kind and
municipality, in the user's RIEC region, a partner that is a party of the user's covenants
(:meth:`BarrierPlan.check`). All barriers are checked before any is stored: one bad line
stores nothing, and every problem is named with its file and line. A barrier the plan holds
already (same model, step, partner, kind, municipality, start and description) is skipped, so
loading a file twice adds nothing. Each barrier added is audited like one entered on the
page, naming the file it came from by a digest of its contents (not by its name, which is free
text and may name anything).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from services.core.barriers.plan_file import MAX_BYTES, parse_plan
from services.core.covenant.problems import Problem
from services.riec.model import RiecError
from services.riec.plan import BarrierPlan
from services.web.users import User


class PlanFileError(RiecError):
    """A plan file has problems; ``problems`` lists each with its file and line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class PlanLoaded:
    added: int
    skipped: int
    """Barriers the plan held already."""
    illustration: str | None


def load_plan_file(plan: BarrierPlan, user: User, path: Path) -> PlanLoaded:
    """Add the barriers of the file at ``path`` to ``plan`` as ``user``."""
    try:
        with path.open("rb") as opened:  # at most one byte past the limit, whatever the file
            data = opened.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise PlanFileError([Problem(str(path), 0, "file is larger than 1 MiB", "split it")])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise PlanFileError(
            [Problem(str(path), 0, f"cannot read: {type(error).__name__}", "check the path")]
        ) from None
    parsed = parse_plan(text, str(path))
    problems = list(parsed.problems)
    rows = []
    for line, barrier in parsed.barriers:
        fields = barrier.model_dump()
        try:
            rows.append((fields, plan.check(user, **fields)))
        except RiecError as error:
            problems.append(Problem(str(path), line, str(error)))
    if problems:
        raise PlanFileError(problems)
    source = f"file sha256:{hashlib.sha256(data).hexdigest()[:24]}"  # its name is free text
    held = {_key(_fields(b)) for b in plan.barriers()}
    added = skipped = 0
    for fields, row in rows:
        if _key(row) in held:
            skipped += 1
            continue
        plan.raise_barrier(user, **fields, source=source)
        held.add(_key(row))
        added += 1
    return PlanLoaded(added, skipped, parsed.illustration)


KEY = ("model", "step", "partner", "kind", "municipality", "since", "description")


def _fields(barrier: object) -> dict[str, object]:
    return {k: getattr(barrier, k) for k in KEY}


def _key(row: dict[str, object]) -> tuple[object, ...]:
    return tuple(row[k] for k in KEY)
