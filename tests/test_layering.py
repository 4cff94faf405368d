"""The layout shows the architecture, and these tests hold it: the pure core imports no I/O
library and no service; the database package, which every stateful service depends on,
imports no service (the schema used to live in ``services/audit`` and import the web,
re-identification, gateway, stacking and coverage packages upward)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parent.parent / "services"

IO_LIBRARIES = frozenset(
    {
        "aiokafka",
        "alembic",
        "faust",
        "fastapi",
        "httpx",
        "kafka",
        "psycopg",
        "requests",
        "socket",
        "sqlalchemy",
        "sqlite3",
        "starlette",
        "subprocess",
        "uvicorn",
    }
)


def _imports(path: Path, top: Path) -> list[tuple[int, str]]:
    """Every module ``path`` (below ``top``) imports, with its line (relative imports
    resolved)."""
    package = ".".join(path.relative_to(top).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _violations(
    package: str,
    allowed: tuple[str, ...],
    forbidden_roots: frozenset[str],
    services: Path = SERVICES,
) -> list[str]:
    top = services.parent
    bad = []
    for path in sorted((services / package).rglob("*.py")):
        for line, name in _imports(path, top):
            root = name.split(".")[0]
            if (
                name.startswith("services.") and not name.startswith(allowed)
            ) or root in forbidden_roots:
                bad.append(f"{path.relative_to(top)}:{line} imports {name}")
    return bad


def test_the_core_imports_no_service_and_no_io_library() -> None:
    assert _violations("core", ("services.core",), IO_LIBRARIES) == []


def test_the_database_package_imports_no_service() -> None:
    allowed = ("services.database", "services.core.errors", "services.config")
    assert _violations("database", allowed, frozenset()) == []


@pytest.mark.parametrize(
    "line",
    ["from services.web import routes", "import aiokafka", "from ...web import schema"],
)
def test_the_checks_see_an_offending_import(tmp_path: Path, line: str) -> None:
    """The checks are not vacuous: an upward or I/O import in a module is reported."""
    tables = tmp_path / "services" / "database" / "tables"
    tables.mkdir(parents=True)
    (tables / "probe.py").write_text("from services.database import engine\n")
    allowed = ("services.database",)
    assert _violations("database", allowed, IO_LIBRARIES, tmp_path / "services") == []
    (tables / "probe.py").write_text(f"{line}\n")
    assert _violations("database", allowed, IO_LIBRARIES, tmp_path / "services") != []
