"""Router workers as supervised child processes.

Each worker is ``python -m services.cli router`` with the hub's settings in its environment,
so a worker started here behaves exactly like one an operator starts on another machine.
A worker that dies is restarted (with back-off); its uncommitted batch is re-read by the
group, and deterministic exchange ids make that harmless. A hub that dies takes its workers
with it (the parent-death signal), so none is left running against a broker that is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.broker.process import parent_death_hook, spawn_tied
from services.hub.worker_health import WorkerHealth

log = logging.getLogger("schakel.hub")


@dataclass
class Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    log_path: Path | None = None
    exits: list[float] = field(default_factory=list)
    """Wall-clock times it exited (the last 50), for `schakel status`."""
    last_exit_code: int | None = None


@dataclass
class WorkerPool:
    """Starts, watches and stops N worker processes (router workers unless told otherwise)."""

    count: int
    environ: Mapping[str, str]
    log_dir: Path
    extra_args: tuple[str, ...] = ()
    name: str = "router"
    command: tuple[str, ...] = ()
    """The ``schakel`` verb to run (default: ``router --instance router-N``)."""
    workers: list[Worker] = field(default_factory=list)

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.workers = [Worker(index=i) for i in range(self.count)]
        for worker in self.workers:
            self._spawn(worker)

    def _spawn(self, worker: Worker) -> None:
        worker.log_path = self.log_dir / f"{self.name}-{worker.index}.log"
        verb = self.command or ("router", "--instance", f"router-{worker.index}")
        with worker.log_path.open("ab") as sink:

            def spawn() -> subprocess.Popen[bytes]:
                return subprocess.Popen(  # noqa: S603 - our own interpreter and module
                    [
                        sys.executable,
                        "-m",
                        "services.cli",
                        *verb,
                        *self.extra_args,
                    ],
                    env={**os.environ, **self.environ},
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    # a hub killed outright (SIGKILL) takes its workers with it: SIGTERM, so
                    # they drain (see services/broker/process.py)
                    preexec_fn=parent_death_hook(),  # noqa: PLW1509 - fork-safe prctl only
                )

            worker.process = spawn_tied(spawn)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process and w.process.poll() is None]

    def supervise(self) -> list[str]:
        """Restart workers that exited; returns a line per event for the console."""
        events = []
        now = time.monotonic()
        for worker in self.workers:
            if worker.process is None or worker.process.poll() is None:
                continue
            if worker.next_start == 0.0:
                worker.exits = [*worker.exits[-49:], time.time()]
                worker.last_exit_code = worker.process.returncode
                delay = min(30.0, 0.5 * 2 ** min(worker.restarts, 6))
                worker.next_start = now + delay
                events.append(
                    f"{self.name} worker {worker.index} exited with {worker.process.returncode}; "
                    f"restarting in {delay:.1f} s (log: {worker.log_path})"
                )
            elif now >= worker.next_start:
                worker.restarts += 1
                worker.next_start = 0.0
                self._spawn(worker)
                events.append(
                    f"{self.name} worker {worker.index} restarted (pid {worker.process.pid})"
                )
        return events

    def health(self) -> list[WorkerHealth]:
        """Each worker as `schakel status` shows it (see services/hub/worker_health.py)."""
        return [
            WorkerHealth(
                self.name,
                w.index,
                w.process.pid if w.process is not None else None,
                w.process is not None and w.process.poll() is None,
                w.restarts,
                tuple(w.exits),
                w.last_exit_code,
                str(w.log_path or ""),
            )
            for w in self.workers
        ]

    def terminate(self) -> None:
        """Ask every running worker to drain and exit (SIGTERM), without waiting: a hub
        stops all its pools at once, so Ctrl-C takes the slowest drain, not their sum."""
        for worker in self.workers:
            if worker.process and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        self.terminate()
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            if worker.process is None:
                continue
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait(5)
