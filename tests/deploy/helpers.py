"""What the deploy files are checked against: the real CLI, the settings the code reads, the
routes the services serve and the metrics they export."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer.main
import yaml

from services.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_ENV_LITERAL = re.compile(r"\"(SCHAKEL_[A-Z0-9_]+)\"")
THIRD_PARTY_ENV = {
    "PGPASSWORD": "libpq (psycopg) reads the database password from it",
}


def load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def env_read_by_code() -> set[str]:
    """Every SCHAKEL_* variable name that appears as a string literal in services/."""
    names: set[str] = set()
    for file in (ROOT / "services").rglob("*.py"):
        names.update(_ENV_LITERAL.findall(file.read_text()))
    return names


def cli() -> Any:
    return typer.main.get_command(app)


def resolve(args: Sequence[str]) -> list[str]:
    """Parse ``schakel ARGS`` with the real Typer app without running it: every command must
    exist, every option be one it has and every value convert to its type (Typer's own
    checks raise otherwise). Returns the command path, e.g. ``["stacking", "run"]``."""
    command = cli()
    context = None
    path: list[str] = []
    rest = list(args)
    while True:
        context = command.make_context(path[-1] if path else "schakel", rest, parent=context)
        # the sub-command name is kept apart from the arguments after it
        protected = getattr(context, "protected_args", None) or getattr(
            context, "_protected_args", []
        )
        rest = [*protected, *context.args]
        commands = getattr(command, "commands", None)
        if commands is None or not rest:
            break
        name = rest.pop(0)
        if name not in commands:
            raise AssertionError(f"schakel {' '.join(path)}: no command {name!r}")
        command = commands[name]
        path.append(name)
    if getattr(command, "commands", None) is not None and not command.invoke_without_command:
        raise AssertionError(f"schakel {' '.join(path)} needs a sub-command")
    if rest:
        raise AssertionError(f"schakel {' '.join(path)}: unexpected arguments {rest}")
    return path


def web_status(paths: Sequence[str]) -> dict[str, int]:
    """The status the web workplace answers for each of ``paths`` without a session (built
    on a throwaway SQLite database)."""
    import tempfile

    from fastapi.testclient import TestClient

    from services.audit.store import SqlAuditStore
    from services.database.engine import make_engine
    from services.keys.testing import MemoryKeyStore
    from services.metrics.settings import MetricsSettings
    from services.web.app import create_web_app
    from services.web.context import WebSettings

    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/audit.db")
        SqlAuditStore(engine).create_schema()
        web = create_web_app(
            engine,
            MemoryKeyStore.for_tests(),
            WebSettings(secret=b"s" * 32, kdf_cost=8),
            metrics=MetricsSettings(verify_every_s=0),
        )
        client = TestClient(web, follow_redirects=False)
        answers = {path: client.get(path).status_code for path in paths}
        engine.dispose()
    return answers


def gateway_status(paths: Sequence[str]) -> dict[str, int]:
    """The status the gateway answers for each of ``paths`` without a token (the in-memory
    broker behind it, a throwaway SQLite database)."""
    from fastapi.testclient import TestClient

    from services.gateway.app import create_gateway_app
    from tests.gateway.helpers import make_gateway, memory_broker, sqlite_engine

    engine = sqlite_engine()
    try:
        with TestClient(create_gateway_app(make_gateway(engine, memory_broker()))) as client:
            return {path: client.get(path).status_code for path in paths}
    finally:
        engine.dispose()


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)
