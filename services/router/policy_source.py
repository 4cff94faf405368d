"""The policy the router applies, reloaded when covenant files change or on SIGHUP.

A reload that fails the covenant check keeps the policy in force and reports the problems:
a typo in a covenant file must never stop the exchange or widen it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from services.config import Loaded
from services.core.covenant.loader import covenant_files
from services.core.policy import Policy
from services.core.schema_registry import SchemaRegistry

log = logging.getLogger("schakel.router.policy")

Loader = Callable[[date], Loaded]


@dataclass(frozen=True)
class Current:
    registry: SchemaRegistry
    policy: Policy
    fingerprint: tuple[tuple[str, int, int], ...]


class PolicySource:
    """Holds the compiled policy and swaps it atomically when the covenant files change."""

    def __init__(self, load: Loader, paths: Sequence[Path], today: Callable[[], date]) -> None:
        self._load = load
        self._paths = list(paths)
        self._today = today
        self._lock = threading.Lock()
        self._requested = False
        fingerprint = self._fingerprint()
        loaded = load(today())
        if loaded.policy is None:
            problems = "\n".join(str(p) for p in loaded.checked.errors)
            raise SystemExit(f"covenants have errors; the router will not start:\n{problems}")
        self._current = Current(loaded.registry, loaded.policy, fingerprint)

    @property
    def current(self) -> Current:
        return self._current

    def request_reload(self) -> None:
        """Ask for a reload at the next check (e.g. from a SIGHUP handler)."""
        self._requested = True

    def maybe_reload(self) -> bool:
        """Reload when files changed or a reload was requested; True when the policy changed."""
        fingerprint = self._fingerprint()
        if fingerprint == self._current.fingerprint and not self._requested:
            return False
        with self._lock:
            self._requested = False
            loaded = self._load(self._today())
            if loaded.policy is None:
                for problem in loaded.checked.errors:
                    log.error("covenant reload refused: %s", problem)
                # remember the fingerprint so a broken file is reported once, not every tick
                self._current = Current(self._current.registry, self._current.policy, fingerprint)
                return False
            self._current = Current(loaded.registry, loaded.policy, fingerprint)
            versions = ", ".join(c.key for c in loaded.policy.covenants)
            log.info("covenants reloaded: %s", versions)
            return True

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        entries = []
        for file in covenant_files(self._paths):
            try:
                stat = file.stat()
            except OSError:
                continue
            entries.append((str(file), stat.st_mtime_ns, stat.st_size))
        return tuple(entries)
