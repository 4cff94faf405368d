"""No test may read or write the checkout's state (``var/``) or the user's (a pytest plugin).

A developer runs ``make run`` — which fills the checkout's ``var/`` with a key file, an audit
database and a witness — and then ``make test``; the tests must not see any of it, nor leave
anything behind there or in the user's home directory. Two parts:

* **Every test gets its own state.** An autouse fixture points ``SCHAKEL_STATE_DIR`` at a fresh
  directory under pytest's tmp dir, and removes every other ``SCHAKEL_*`` variable that says
  where state or a hub is (key file, database, witness, Kafka cluster, embedded broker kind...)
  so a developer's shell cannot leak into a test; test knobs (:data:`TEST_KNOBS`) stay. The
  ``XDG_*`` directories point into the session's tmp dir. Child processes inherit all of it.
* **A guard fails a test that touches the checkout's state anyway.** In the test process a
  :func:`sys.addaudithook` hook refuses (``PermissionError``) and records every ``open``,
  ``sqlite3.connect``, directory listing, creation, removal or rename of a path under the
  checkout's ``var/``, and every opening *for writing* of a path under the home directory
  (outside the checkout and the tmp dirs); for child processes, the files under ``var/`` are
  compared (size, mtime, presence) before and after each test. Either finding fails the test
  at teardown, naming the paths; a finding outside any test (a session fixture) fails the
  run. The hook watches from the end of collection to the end of the session. Root ignores
  file permissions, so making ``var/`` read-only would prove nothing; the audit hook sees
  every access in this interpreter whoever runs it. The file comparison is skipped while a hub
  started from the checkout is running (``var/hub.json`` names a live process: a developer's
  ``make run`` in another terminal), since that hub writes there itself.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARDED_ENV = "SCHAKEL_TEST_GUARDED_STATE"
GUARDED_COVENANTS_ENV = "SCHAKEL_TEST_GUARDED_COVENANTS"
"""Test knob: the directory to guard instead of the checkout's ``var/`` (for the guard's own
tests, tests/test_state_guard.py, which must not touch the real one to prove the point)."""
CHECKOUT_STATE = Path(os.environ.get(GUARDED_ENV) or ROOT / "var")
CHECKOUT_COVENANTS = Path(os.environ.get(GUARDED_COVENANTS_ENV) or ROOT / "covenants")
"""Shipped covenants, which a child process (a command that keeps a record next to a rule
file) must not change either."""
HOME = Path.home()

TEST_KNOBS = frozenset(
    {
        "SCHAKEL_TEST_BROKERS",
        "SCHAKEL_SOAK_SIGNALS",
        "SCHAKEL_FUZZ_EXAMPLES",
        "SCHAKEL_FUZZ_RANDOM",
        GUARDED_ENV,
        GUARDED_COVENANTS_ENV,
    }
)
"""``SCHAKEL_*`` variables that tune the test run itself; every other one is removed."""

_PATH_EVENTS = frozenset(
    {
        "sqlite3.connect",
        "os.listdir",
        "os.scandir",
        "os.mkdir",
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "os.utime",
        "os.link",
        "os.symlink",
        "shutil.rmtree",
        "shutil.copyfile",
        "shutil.move",
    }
)
_READ_EVENTS = frozenset({"os.listdir", "os.scandir"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class CheckoutStateTouched(PermissionError):  # noqa: N818 - reads as what happened
    """A test reached for the checkout's or the user's state."""


class Guard:
    """The audit hook: what it refused since :meth:`reset`."""

    def __init__(self, protected: Path, home: Path, allowed: list[Path]) -> None:
        self.protected = str(protected)
        self.home = str(home)
        self.allowed = [str(path) for path in allowed]
        self.active = False
        self.touched: list[str] = []
        self._busy = threading.local()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The guard's own look at the checkout's state (this thread only) is not a finding."""
        self._busy.on = True
        try:
            yield
        finally:
            self._busy.on = False

    def reset(self) -> list[str]:
        touched, self.touched = self.touched, []
        return touched

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active or getattr(self._busy, "on", False):
            return
        if event == "open":
            target, writing = args[0], _writes(args[1], args[2])
        elif event in _PATH_EVENTS:
            target, writing = args[0] if args else None, event not in _READ_EVENTS
        else:
            return
        if not isinstance(target, str | bytes | os.PathLike):
            return  # a file descriptor, or None
        self._busy.on = True
        try:
            where = os.path.abspath(os.fsdecode(target))
        finally:
            self._busy.on = False
        if _under(where, self.protected):
            self._refuse(f"{event} {where}")
        if writing and _under(where, self.home) and not self._allowed(where):
            self._refuse(f"{event} (writing) {where}")

    def _allowed(self, where: str) -> bool:
        return any(_under(where, path) for path in self.allowed)

    def _refuse(self, what: str) -> None:
        self.touched.append(what)
        raise CheckoutStateTouched(
            f"a test touched state it must not: {what}; give it its own directory "
            "(SCHAKEL_STATE_DIR is a fresh tmp dir in every test; see tests/state_guard.py)"
        )


def _writes(mode: object, flags: object) -> bool:
    if isinstance(mode, str) and any(ch in mode for ch in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & _WRITE_FLAGS)


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory + os.sep)


def files_under(directory: Path) -> dict[str, tuple[int, int]]:
    """Path → (size, mtime in ns) of every file under ``directory`` (nothing if missing)."""
    found: dict[str, tuple[int, int]] = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            try:
                info = os.stat(path)
            except FileNotFoundError:
                continue
            found[path] = (info.st_size, info.st_mtime_ns)
    if directory.exists():
        found[str(directory)] = (0, 0)
    return found


def _watched() -> dict[str, tuple[int, int]]:
    """The files a child process of a test must leave as they are: the checkout's state and
    its shipped covenants."""
    return files_under(CHECKOUT_STATE) | files_under(CHECKOUT_COVENANTS)


def live_checkout_hub() -> bool:
    """Whether a hub started from the checkout runs now (``var/hub.json`` names a live pid)."""
    try:
        import orjson

        pid = int(orjson.loads((CHECKOUT_STATE / "hub.json").read_bytes())["pid"])
        os.kill(pid, 0)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


_GUARD: Guard | None = None
_SESSION: dict[str, Any] = {}
_WORKER_FINDINGS = "schakel_state_guard_touched"


def scrub_environment(state: Path, user: Path) -> dict[str, str | None]:
    """Point ``SCHAKEL_STATE_DIR`` at ``state`` and the ``XDG_*`` dirs into ``user``; remove
    every other ``SCHAKEL_*`` variable but the test knobs. Returns the changes, for monkeypatch."""
    changes: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith("SCHAKEL_") and name not in TEST_KNOBS
    }
    changes["SCHAKEL_STATE_DIR"] = str(state)
    for kind in ("CONFIG", "CACHE", "DATA", "STATE"):
        changes[f"XDG_{kind}_HOME"] = str(user / kind.lower())
    return changes


@pytest.hookimpl(trylast=True)  # after pytest's tmpdir plugin made the session's tmp factory
def pytest_configure(config: pytest.Config) -> None:
    """For the whole session (session fixtures included): the scrubbed environment with a
    session state dir, and the audit hook (installed once; it cannot be removed, so it only
    acts while ``active``: from the end of collection to the end of the session)."""
    global _GUARD  # noqa: PLW0603 - one hook per interpreter
    factory: pytest.TempPathFactory = config._tmp_path_factory  # type: ignore[attr-defined]
    basetemp = factory.getbasetemp()
    for name, value in scrub_environment(basetemp / "session-state", basetemp / "user").items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    allowed = [basetemp, basetemp.resolve(), ROOT, Path(tempfile.gettempdir())]
    if _GUARD is None:
        _GUARD = Guard(CHECKOUT_STATE, HOME, allowed)
        sys.addaudithook(_GUARD)
    _SESSION["files"] = None if live_checkout_hub() else files_under(CHECKOUT_STATE)
    _SESSION["outside"] = []
    _GUARD.active = False


def pytest_collection_finish(session: pytest.Session) -> None:
    """Watch from here on: fixtures (session-scoped ones included) and tests. Collection is
    left alone — pytest itself walks the directories it is given."""
    if _GUARD is not None:
        _GUARD.reset()
        _GUARD.active = True


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: called in the controller
def pytest_testnodedown(node: Any, error: object) -> None:
    """Under pytest-xdist (``-n``): take over what a worker's session fixtures touched, as a
    worker's own exit status does not decide the run's."""
    output = getattr(node, "workeroutput", None) or {}
    _SESSION.setdefault("outside", []).extend(output.get(_WORKER_FINDINGS, []))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if anything outside a test (session or module fixtures) touched the
    checkout's state, or its files changed during the session. An xdist worker hands its
    findings to the controller (:func:`pytest_testnodedown`), which fails the run."""
    if _GUARD is None:
        return
    _GUARD.active = False
    touched: list[str] = [*_SESSION.get("outside", []), *_GUARD.reset()]
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_WORKER_FINDINGS] = touched
    before = _SESSION.get("files")
    if before is not None and not live_checkout_hub():  # the guard is off by now
        after = files_under(CHECKOUT_STATE)
        touched += [
            f"changed: {p}"
            for p in sorted(before.keys() | after.keys())
            if before.get(p) != after.get(p)
        ]
    if touched:
        report = session.config.get_terminal_writer()
        report.line("the test session touched the checkout's or the user's state:", red=True)
        for line in touched[:20]:
            report.line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def own_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """A fresh ``SCHAKEL_STATE_DIR`` for this test, nothing else of the hub's configured, and
    the guard watching (see the module docstring)."""
    state = tmp_path_factory.mktemp("state")
    user = tmp_path_factory.getbasetemp() / "user"
    for name, value in scrub_environment(state, user).items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert _GUARD is not None
    with _GUARD.paused():
        watch_files = not live_checkout_hub()
        before = _watched() if watch_files else {}
    _SESSION.setdefault("outside", []).extend(_GUARD.reset())  # touched by fixtures set up before
    yield state
    touched = _GUARD.reset()
    if watch_files:
        with _GUARD.paused():
            after = _watched()
        changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
        touched += [f"changed by a child process: {path}" for path in changed]
    if touched:
        pytest.fail(
            "this test touched the checkout's or the user's state:\n  "
            + "\n  ".join(touched[:20])
            + "\nno test may: it gets its own SCHAKEL_STATE_DIR (tests/state_guard.py)",
            pytrace=False,
        )
