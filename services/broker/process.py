"""Running a broker binary as a child process of the hub, and never leaving it behind.

A :class:`ChildProcess` starts one program with a minimal environment, its working directory
in a directory the hub owns, and stdout and stderr appended to a log file there. It stops the
program gracefully (SIGTERM, then SIGKILL after a bounded wait) or kills it outright (SIGKILL,
for chaos tests), and always reaps it so no zombie remains.

No child may outlive the hub, whatever way the hub ends:

* normal interpreter exit — an :mod:`atexit` hook stops every child still running;
* the hub killed or crashing (SIGKILL, segfault, OOM killer) — on Linux the child is started
  with ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, so the kernel sends it SIGTERM when the parent
  goes away. SIGTERM rather than SIGKILL so a persistent broker still saves its data. If the
  parent died between ``fork`` and the ``prctl`` call the child exits before ``exec``.

Two caveats of the parent-death signal, both handled here. It fires when the *thread* that
forked the child ends, not the process: a broker started from a short-lived thread (say via
``asyncio.to_thread``) would be killed when that thread finishes. So every child is forked
by one daemon "spawner" thread that lives as long as the process, whichever thread asked.
And ``preexec_fn`` runs between fork and exec, so it only calls a ``prctl`` function
resolved beforehand (no imports, no allocation-heavy work) to stay safe in a threaded parent.

Children run in their own session (``start_new_session``), so a Ctrl-C in the hub's terminal
reaches the hub only and the hub shuts the broker down in its own order (after the router has
flushed), instead of the broker dying first.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from services.broker.errors import BrokerError

#: The only address embedded brokers ever bind to.
LOOPBACK = "127.0.0.1"

_PR_SET_PDEATHSIG = 1
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_ATEXIT_STOP_SECONDS = 10.0
_T = TypeVar("_T")


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it).

    There is a window between closing the probe socket and the broker binding the port in
    which another program could take it; brokers that pick their port this way retry with a
    fresh port when the child exits during start-up.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:``port`` now (TIME_WAIT leftovers allowed).

    Checked before starting a broker on a fixed port: if another program listens there — a
    stale broker from an earlier run, say — the probe would find *that* program healthy
    while the new child fails to bind.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def child_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a broker binary: no hub secrets, ``HOME`` in its data dir.

    The broker needs none of the hub's variables (some hold SASL passwords or key paths), and
    pointing ``HOME`` into the data directory keeps anything the binary caches out of the
    operator's home directory.
    """
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if "TMPDIR" in os.environ:
        env["TMPDIR"] = os.environ["TMPDIR"]
    if extra:
        env.update(extra)
    return env


class ChildProcess:
    """One program running as a child of the hub, with its output in ``log_path``."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        log_path: Path,
        env: Mapping[str, str],
        name: str,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.log_path = log_path
        self.env = dict(env)
        self.name = name
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id while started (also after it exited, until the next start)."""
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        """The exit status once the process ended (negative: killed by that signal)."""
        return self._popen.poll() if self._popen else None

    def is_running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def start(self) -> None:
        """Start the program; its output is appended to the log file."""
        if self.is_running():
            raise BrokerError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"--- {stamp} start: {' '.join(self.argv)}\n".encode())
            log.flush()

            def spawn() -> subprocess.Popen[bytes]:
                return subprocess.Popen(  # noqa: S603 - fixed argv of a bundled binary, no shell
                    self.argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    close_fds=True,
                    start_new_session=True,
                    preexec_fn=parent_death_hook(),  # noqa: PLW1509 - see module docstring
                )

            try:
                popen = _SPAWNER.run(spawn)
            except OSError as exc:
                raise BrokerError(
                    f"cannot start {self.name} ({self.argv[0]}): {exc.strerror}"
                ) from None
        self._popen = popen
        with _LIVE_LOCK:
            _LIVE.add(popen)

    def stop(self, timeout: float) -> int | None:
        """Ask the program to stop (SIGTERM); SIGKILL it if it is still running after ``timeout``.

        Returns the exit status (None if it was never started).
        """
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._append_log(f"did not stop within {timeout:.0f} s of SIGTERM; SIGKILL")
                popen.kill()
                popen.wait()
        self._forget(popen)
        return popen.returncode

    def kill(self) -> int | None:
        """Kill the program at once (SIGKILL), as a crash would, and reap it."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            popen.wait()
        self._forget(popen)
        return popen.returncode

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the log file, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _append_log(self, message: str) -> None:
        with contextlib.suppress(OSError), self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- {message}\n")

    @staticmethod
    def _forget(popen: subprocess.Popen[bytes]) -> None:
        with _LIVE_LOCK:
            _LIVE.discard(popen)


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held.

    The interval grows to at most 0.25 s so a slow start costs few probes.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(interval, remaining))
        interval = min(interval * 1.5, 0.25)


class _Spawner:
    """One daemon thread, alive as long as the process, that forks every broker child.

    The parent-death signal is tied to the forking thread; forking from this thread ties it
    to the life of the process instead of the life of whichever thread called ``start()``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]
        self._requests = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, work: Callable[[], _T]) -> _T:
        """Run ``work`` on the spawner thread and return its result (or raise its error)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="broker-spawner", daemon=True
                )
                self._thread.start()
        if threading.current_thread() is self._thread:
            return work()
        done: Future[_T] = Future()
        self._requests.put((work, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            work, done = self._requests.get()
            if not done.set_running_or_notify_cancel():
                continue
            try:
                done.set_result(work())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                done.set_exception(exc)


_SPAWNER = _Spawner()


def spawn_tied(work: Callable[[], _T]) -> _T:
    """Run ``work`` — which starts a child with ``preexec_fn=parent_death_hook()`` — on the
    spawner thread, so the child's parent-death signal follows the life of this process
    rather than the life of the calling thread."""
    return _SPAWNER.run(work)


def parent_death_hook() -> Callable[[], None] | None:
    """The ``preexec_fn`` arming PR_SET_PDEATHSIG, or None where it is not available."""
    if sys.platform != "linux":
        return None
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    sigterm = int(signal.SIGTERM)

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def _prctl() -> Callable[[int, int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.prctl
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    function.restype = ctypes.c_int
    prctl: Callable[[int, int, int, int, int], int] = function
    return prctl


@atexit.register
def _stop_all_children() -> None:
    """Stop every child still running when the interpreter exits (SIGTERM, then SIGKILL)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
        _LIVE.clear()
    for popen in live:
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _ATEXIT_STOP_SECONDS
    for popen in live:
        try:
            popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
