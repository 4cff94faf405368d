"""Where the hub finds its covenants, schemas and reference data, and where it keeps its state.

Covenants, schemas and reference data default to the repository checkout so ``make run`` works
with no configuration. All of the hub's state lives under one directory, ``SCHAKEL_STATE_DIR``
(default ``var/`` of the working directory): the key file, the SQLite audit database and the
checkpoint witness beside it, the embedded broker's data, worker logs, the web cookie secret
and ``hub.json``. Each part can be moved on purpose by its own variable — ``SCHAKEL_KEYS``
(the key file), ``SCHAKEL_DATABASE_URL`` (another database, e.g. PostgreSQL) and
``SCHAKEL_AUDIT_WITNESS`` (a witness kept apart from the database, as it should be in
production) — and ``schakel up`` prints where each part is. Everything derives from
:class:`Paths`, so one setting moves all that is not configured apart.

``SCHAKEL_DEMO=1`` (set by ``schakel up --demo`` for everything it starts) is demo mode: the
demo partners' TEST keys (``covenants/demo/``) are loaded and accepted. Without it, which is
how every deployment runs, TEST keys are refused everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from services.core.regions import REFERENCE_FILE, ReferenceData
from services.core.schema_registry import SchemaRegistry, default_schema_dir

if TYPE_CHECKING:  # the checker and compiler are imported where covenants are loaded: every
    # command and worker imports this module, and most never load covenants (≈ 0.35 s each)
    from services.core.covenant.checker import CheckResult
    from services.core.policy import Policy
    from services.core.pseudonyms import Pseudonymiser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_COVENANTS = ROOT / "covenants"
DEMO_ENV = "SCHAKEL_DEMO"
"""``1`` (or ``true``/``yes``): demo mode, in which TEST keys count. Never set in production."""


def demo_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``SCHAKEL_DEMO`` asks for demo mode."""
    env = os.environ if environ is None else environ
    return env.get(DEMO_ENV, "").strip().lower() in ("1", "true", "yes")


STATE_DIR_ENV = "SCHAKEL_STATE_DIR"
"""Environment variable naming the directory of all the hub's state."""
DEFAULT_STATE_DIR = Path("var")
"""The state directory when :data:`STATE_DIR_ENV` is unset, relative to the working directory
(``var/`` is git-ignored, so development state is never committed)."""
KEYS_ENV = "SCHAKEL_KEYS"
"""Environment variable naming the key file; default ``<state>/keys.json``."""
KEYS_FILE = "keys.json"
DATABASE_URL_ENV = "SCHAKEL_DATABASE_URL"
"""Environment variable with the audit database URL; default SQLite ``<state>/audit.db``."""
AUDIT_DB_FILE = "audit.db"


def _configured(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of the SQLite database file ``path`` (relative stays relative)."""
    return f"sqlite:///{path}"


@dataclass(frozen=True)
class Paths:
    covenants: tuple[Path, ...]
    schemas: Path
    reference: Path
    state: Path
    demo: bool = False
    """Demo mode (``SCHAKEL_DEMO``): the demo's TEST keys are loaded and accepted."""
    keys: Path | None = None
    """The key file configured apart (``SCHAKEL_KEYS``); None means ``<state>/keys.json``."""
    database: str | None = None
    """The database URL configured apart (``SCHAKEL_DATABASE_URL``); None: ``<state>/audit.db``."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        env = os.environ if environ is None else environ
        covenants = env.get("SCHAKEL_COVENANTS")
        keys = _configured(env, KEYS_ENV)
        return cls(
            covenants=tuple(Path(p) for p in covenants.split(os.pathsep))
            if covenants
            else (DEFAULT_COVENANTS,),
            schemas=Path(env.get("SCHAKEL_SCHEMAS", str(default_schema_dir()))),
            reference=REFERENCE_FILE,
            state=Path(_configured(env, STATE_DIR_ENV) or DEFAULT_STATE_DIR),
            demo=demo_mode(env),
            keys=Path(keys) if keys else None,
            database=_configured(env, DATABASE_URL_ENV) or None,
        )

    def absolute(self) -> Paths:
        """These paths with the state directory and key file made absolute (for child
        processes and for printing where everything is)."""
        return replace(
            self,
            state=self.state.resolve(),
            keys=self.keys.resolve() if self.keys is not None else None,
        )

    @property
    def key_file(self) -> Path:
        """The hub's key file: ``SCHAKEL_KEYS``, else ``<state>/keys.json``."""
        return self.keys if self.keys is not None else self.state / KEYS_FILE

    @property
    def database_url(self) -> str:
        """The audit database: ``SCHAKEL_DATABASE_URL``, else SQLite ``<state>/audit.db``."""
        return self.database or sqlite_url(self.state / AUDIT_DB_FILE)

    @property
    def broker(self) -> Path:
        """The embedded broker's data and log."""
        return self.state / "broker"

    @property
    def logs(self) -> Path:
        """The worker processes' logs."""
        return self.state / "logs"


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
    from services.core.covenant.checker import check  # noqa: PLC0415 - see the imports
    from services.core.covenant.loader import load_files  # noqa: PLC0415 - see the imports

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
    from services.core.covenant.compiler import compile_policy  # noqa: PLC0415 - see the imports

    registry, ref, checked = check_covenants(covenants, schemas, reference, today=today, demo=demo)
    policy = compile_policy(checked, registry, pseudonymiser) if checked.ok else None
    return Loaded(registry, ref, checked, policy)


def state_hint(environ: Mapping[str, str] | None = None) -> str:
    """Where the hub's state is looked for, and how to point elsewhere (for error messages
    of commands run from another directory)."""
    env = os.environ if environ is None else environ
    configured = _configured(env, STATE_DIR_ENV)
    if configured:
        return f"{STATE_DIR_ENV}={configured}"
    return (
        f"{STATE_DIR_ENV} is not set, so the state directory is "
        f"{Path.cwd() / DEFAULT_STATE_DIR}; run the command in the directory where you ran "
        f"`schakel up`, or set {STATE_DIR_ENV} to its state directory"
    )
