"""How the hub's worker processes are doing: ``$SCHAKEL_STATE_DIR/workers.json``.

`schakel up` rewrites the file whenever a worker exits or is restarted, so `schakel status`
(another process) can say that a worker keeps exiting — "outcomes worker 0 restarted 7 times
in 2 min, last exit code 1, see var/logs/outcomes-0.log" — instead of counting it as running.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from services.config import Paths

FILE = "workers.json"
WINDOW_S = 600.0
"""Exits within this many seconds count towards "keeps exiting"."""
LOOPING_EXITS = 3
"""A worker that exited this often within :data:`WINDOW_S` is crash-looping."""


@dataclass(frozen=True)
class WorkerHealth:
    """One worker as its supervisor last saw it (times are wall-clock seconds)."""

    name: str
    index: int
    pid: int | None
    running: bool
    restarts: int
    exits: tuple[float, ...]
    """When it exited, most recent last (at most the last 50)."""
    last_exit_code: int | None
    log: str

    @property
    def label(self) -> str:
        return f"{self.name} worker {self.index}"

    def recent_exits(self, now: float) -> tuple[float, ...]:
        return tuple(t for t in self.exits if now - t <= WINDOW_S)

    def looping(self, now: float) -> bool:
        return len(self.recent_exits(now)) >= LOOPING_EXITS

    def problem(self, now: float) -> str | None:
        """One line when the worker exited lately (None when it has been well)."""
        recent = self.recent_exits(now)
        if not recent:
            return None
        span = max(now - recent[0], 1.0)
        return (
            f"{self.label} {'keeps exiting: ' if self.looping(now) else ''}"
            f"restarted {self.restarts} time(s), {len(recent)} exit(s) in the last "
            f"{_duration(span)}, last exit code {self.last_exit_code}, see {self.log}"
        )

    def state(self, now: float) -> str:
        if self.looping(now):
            return "CRASH-LOOPING"
        return "running" if self.running else "restarting"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def health_path(paths: Paths | None = None) -> Path:
    return (paths or Paths.from_env()).state / FILE


def write_health(path: Path, workers: Sequence[WorkerHealth]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps([dataclasses.asdict(w) for w in workers]))
    temporary.replace(path)


def read_health(path: Path) -> list[WorkerHealth]:
    """The workers in ``path``; none when it is missing or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
        return [
            WorkerHealth(
                str(item["name"]),
                int(item["index"]),
                int(item["pid"]) if item.get("pid") is not None else None,
                item.get("running") is True,
                int(item["restarts"]),
                tuple(float(t) for t in item.get("exits", ())),
                int(item["last_exit_code"]) if item.get("last_exit_code") is not None else None,
                str(item.get("log", "")),
            )
            for item in data
        ]
    except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return []
