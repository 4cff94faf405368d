"""The child-process machinery, with small stand-in programs instead of brokers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from services.broker import BrokerError
from services.broker.probe import is_kafka, probe
from services.broker.process import (
    LOOPBACK,
    ChildProcess,
    child_environment,
    free_loopback_port,
    wait_until,
)
from tests.kafka_fixtures import process_alive as alive

REPO = Path(__file__).resolve().parents[2]


def python_child(code: str, tmp_path: Path, name: str = "stand-in") -> ChildProcess:
    return ChildProcess(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        log_path=tmp_path / f"{name}.log",
        env=child_environment(tmp_path),
        name=name,
    )


def test_free_loopback_port_is_bindable_on_loopback():
    port = free_loopback_port()
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))


def test_start_logs_and_stop_gracefully(tmp_path: Path):
    child = python_child(
        """
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: (print("got", "SIGTERM", flush=True), sys.exit(0)))
        print("hello from", "the child", flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    child.start()
    assert child.is_running()
    assert wait_until(lambda: "hello from the child" in child.log_tail(), timeout=10)
    with pytest.raises(BrokerError, match="already running"):
        child.start()
    assert child.stop(timeout=10) == 0
    assert not child.is_running()
    assert "got SIGTERM" in child.log_tail()
    assert child.log_tail().startswith("--- ")


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path):
    child = python_child(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("child", "ready", flush=True)
        time.sleep(60)
        """,
        tmp_path,
    )
    child.start()
    assert wait_until(lambda: "child ready" in child.log_tail(), timeout=10)
    began = time.monotonic()
    assert child.stop(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - began < 5
    assert "SIGKILL" in child.log_tail()


def test_kill_reaps_the_child(tmp_path: Path):
    child = python_child("import time; time.sleep(60)", tmp_path)
    child.start()
    pid = child.pid
    assert pid is not None
    assert child.kill() == -signal.SIGKILL
    assert not alive(pid)
    assert child.kill() == -signal.SIGKILL  # idempotent


def test_child_environment_holds_no_hub_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SCHAKEL_KAFKA_SASL_PASSWORD", "do-not-leak")
    env = child_environment(tmp_path)
    assert "SCHAKEL_KAFKA_SASL_PASSWORD" not in env
    assert env["HOME"] == str(tmp_path)


def test_missing_program_is_a_broker_error(tmp_path: Path):
    child = ChildProcess(
        [str(tmp_path / "no-such-binary")],
        cwd=tmp_path,
        log_path=tmp_path / "x.log",
        env=child_environment(tmp_path),
        name="ghost",
    )
    with pytest.raises(BrokerError, match="cannot start ghost"):
        child.start()


@pytest.mark.parametrize("started_from", ["main thread", "short-lived thread"])
def test_child_dies_with_its_parent(tmp_path: Path, started_from: str):
    """A hub killed with SIGKILL takes its broker child with it (PR_SET_PDEATHSIG).

    Also when the child was started from a thread that has finished since, as
    ``asyncio.to_thread(broker.restart)`` does: the signal must follow the process, not the
    thread that asked for the start.
    """
    pid_file = tmp_path / "grandchild.pid"
    script = f"""
        import sys, threading, time
        from pathlib import Path
        from services.broker.process import ChildProcess, child_environment
        tmp = Path({str(tmp_path)!r})
        child = ChildProcess(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            cwd=tmp, log_path=tmp / "gc.log", env=child_environment(tmp), name="gc",
        )
        if {started_from == "main thread"}:
            child.start()
        else:
            starter = threading.Thread(target=child.start)
            starter.start()
            starter.join()
        time.sleep(0.3)  # the starting thread is gone; the child must still run
        if child.is_running():
            Path({str(pid_file)!r}).write_text(str(child.pid))
        time.sleep(60)
    """
    hub = subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO)
    try:
        assert wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=20)
        grandchild = int(pid_file.read_text())
        assert alive(grandchild)
        hub.kill()
        hub.wait(timeout=10)
        assert wait_until(lambda: not alive(grandchild), timeout=10), "broker child orphaned"
    finally:
        hub.kill()
        hub.wait(timeout=10)


def test_child_outlives_the_thread_that_started_it(tmp_path: Path):
    """A thread's exit must not kill a broker it started (the signal follows the forker)."""
    child = python_child("import time; time.sleep(60)", tmp_path)
    thread = threading.Thread(target=child.start)
    thread.start()
    thread.join(timeout=10)
    try:
        time.sleep(0.3)
        assert child.is_running()
    finally:
        child.kill()


def test_wait_until_is_bounded():
    began = time.monotonic()
    assert not wait_until(lambda: False, timeout=0.3)
    assert 0.25 < time.monotonic() - began < 2


def test_probe_rejects_a_port_that_is_not_kafka():
    with socket.socket() as server:
        server.bind((LOOPBACK, 0))
        server.listen()
        port = server.getsockname()[1]

        def answer_garbage() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        with pytest.raises(BrokerError):
            probe(LOOPBACK, port, timeout=2)
        thread.join(timeout=5)


def test_probe_of_a_closed_port():
    port = free_loopback_port()
    assert not is_kafka(LOOPBACK, port, timeout=0.5)
    with pytest.raises(ConnectionRefusedError):
        probe(LOOPBACK, port, timeout=0.5)


def test_no_children_left_behind():
    """Sanity check across this module: no stand-in program is still running."""
    mine = os.getpid()
    leftovers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == mine and fields[0] != "Z":
            cmdline = (stat.parent / "cmdline").read_bytes()
            if b"time.sleep(60)" in cmdline:
                leftovers.append(stat.parent.name)
    assert leftovers == []
