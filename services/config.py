"""Where the hub finds its covenants, schemas, reference data and keys.

Defaults point into the repository checkout so ``make run`` works with no configuration;
each can be overridden by an environment variable (``SCHAKEL_COVENANTS``, ``SCHAKEL_SCHEMAS``,
``SCHAKEL_KEYS``, ``SCHAKEL_STATE_DIR``) or a command-line option.

``SCHAKEL_DEMO=1`` (set by ``schakel up --demo`` for everything it starts) is demo mode: the
demo partners' TEST keys (``covenants/demo/``) are loaded and accepted. Without it, which is
how every deployment runs, TEST keys are refused everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from services.core.covenant.checker import CheckResult, check
from services.core.covenant.compiler import compile_policy
from services.core.covenant.loader import load_files
from services.core.policy import Policy
from services.core.pseudonyms import Pseudonymiser
from services.core.regions import REFERENCE_FILE, ReferenceData
from services.core.schema_registry import SchemaRegistry, default_schema_dir

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COVENANTS = ROOT / "covenants"
DEMO_ENV = "SCHAKEL_DEMO"
"""``1`` (or ``true``/``yes``): demo mode, in which TEST keys count. Never set in production."""


def demo_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SCHAKEL_DEMO`` asks for demo mode."""
    env = os.environ if environ is None else environ
    return env.get(DEMO_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Paths:
    covenants: tuple[Path, ...]
    schemas: Path
    reference: Path
    state: Path
    demo: bool = False
    """Demo mode (``SCHAKEL_DEMO``): the demo's TEST keys are loaded and accepted."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        covenants = env.get("SCHAKEL_COVENANTS")
        return cls(
            covenants=tuple(Path(p) for p in covenants.split(os.pathsep))
            if covenants
            else (DEFAULT_COVENANTS,),
            schemas=Path(env.get("SCHAKEL_SCHEMAS", str(default_schema_dir()))),
            reference=REFERENCE_FILE,
            state=Path(env.get("SCHAKEL_STATE_DIR", "var")),
            demo=demo_mode(env),
        )


@dataclass(frozen=True)
class Loaded:
    """A registry, a check result and (when the check passed) the compiled policy."""

    registry: SchemaRegistry
    reference: ReferenceData
    checked: CheckResult
    policy: Policy | None


def check_covenants(
    covenants: Sequence[Path], schemas: Path, reference: Path, *, today: date, demo: bool = False
) -> tuple[SchemaRegistry, ReferenceData, CheckResult]:
    """Load and check covenant files (the work of ``schakel covenant check``); ``demo`` adds
    the demo's TEST keys and accepts them."""
    registry = SchemaRegistry.load(schemas)
    ref = ReferenceData.load(reference)
    return registry, ref, check(load_files(covenants, demo=demo), registry, ref, today=today)


def load_policy(
    covenants: Sequence[Path],
    schemas: Path,
    reference: Path,
    pseudonymiser: Pseudonymiser,
    *,
    today: date,
    demo: bool = False,
) -> Loaded:
    """Check covenants and compile them into a policy when they are free of errors (with
    ``demo``, in demo mode: TEST keys are loaded and accepted)."""
    registry, ref, checked = check_covenants(covenants, schemas, reference, today=today, demo=demo)
    policy = compile_policy(checked, registry, pseudonymiser) if checked.ok else None
    return Loaded(registry, ref, checked, policy)
