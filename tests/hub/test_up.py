"""`schakel up --demo` as a user runs it: everything starts, feeds fill, Ctrl-C stops cleanly."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import orjson
import pytest

from services.broker.process import free_loopback_port
from services.hub.state import HubState

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def read_events(url: str, token: str, count: int) -> list[str]:
    """Follow the gateway's event stream until ``count`` events came; their ids."""
    ids: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url, timeout=60) as http,
        http.stream("GET", "/v1/feed/events", headers=headers) as stream,
    ):
        for line in stream.iter_lines():
            if line.startswith("id: "):
                ids.append(line.removeprefix("id: "))
            if len(ids) == count:
                break
    return ids


def leave_and_keep_reading(env: dict[str, str], gateway: str) -> threading.Thread:
    """A feed reader of the gateway reads and leaves; another keeps reading (until Ctrl-C)."""
    issued = run_cli(["gateway", "token", "issue", "--recipient", "riec-nh"], env)
    assert issued.returncode == 0, issued.stderr.decode()
    token = issued.stdout.decode().strip()
    assert len(read_events(gateway, token, 5)) == 5
    still_reading = threading.Thread(target=_follow, args=(gateway, token))
    still_reading.start()
    time.sleep(2)
    return still_reading


def _follow(gateway: str, token: str) -> None:
    """Read the event stream until the hub stops and cuts it."""
    with contextlib.suppress(httpx.HTTPError):
        read_events(gateway, token, 10**6)


def assert_quiet(text: str) -> None:
    """A clean stop and a reader that leaves are silent: no error, no warning, no traceback,
    nothing left unclosed."""
    noisy = [line for line in text.splitlines() if re.search(r"\b(ERROR|WARNING|CRITICAL)\b", line)]
    assert noisy == [], "\n".join(noisy)
    assert "Traceback" not in text and "Unclosed" not in text, text


def riec_feed(env: dict[str, str], log: Path) -> list[dict[str, object]]:
    """The demo partners publish, the router decides, the RIEC feed fills: 20 messages."""
    received: list[dict[str, object]] = []
    deadline = time.monotonic() + 90
    while len(received) < 20 and time.monotonic() < deadline:
        out = run_cli(["subscribe", "--as", "riec-nh", "--from-beginning", "--idle", "3"], env)
        assert out.returncode == 0, out.stderr.decode()
        received = [orjson.loads(line) for line in out.stdout.splitlines()]
    assert len(received) >= 20, log.read_text()
    return received


def test_up_demo_runs_the_whole_flow_and_stops_on_ctrl_c(tmp_path: Path):
    port = free_loopback_port()
    gateway_port = free_loopback_port()
    env = {
        **os.environ,
        "SCHAKEL_STATE_DIR": str(tmp_path / "var"),
        "SCHAKEL_KEYS": str(tmp_path / "var" / "keys.json"),
        "SCHAKEL_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'audit.db'}",
        "COLUMNS": "200",
    }
    env.pop("SCHAKEL_KAFKA_BOOTSTRAP", None)
    log = (tmp_path / "up.log").open("wb")
    hub = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "up",
            "--demo",
            "--rate",
            "100",
            "--web-port",
            str(port),
            "--gateway-port",
            str(gateway_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in a terminal signals the whole process group
    )
    still_reading: threading.Thread | None = None
    try:
        state_file = tmp_path / "var" / "hub.json"
        deadline = time.monotonic() + 60
        while not state_file.exists() and time.monotonic() < deadline:
            assert hub.poll() is None, (tmp_path / "up.log").read_text()
            time.sleep(0.2)
        state = HubState.read(state_file)
        assert state is not None and state.bootstrap.startswith("127.0.0.1:")
        received = riec_feed(env, tmp_path / "up.log")
        assert len({m["exchange_id"] for m in received}) == len(received)
        assert all(m["covenant"]["id"] for m in received)  # type: ignore[index]
        status = run_cli(["status", "--json"], env)
        assert status.returncode == 0, status.stderr.decode()
        report = orjson.loads(status.stdout)
        assert report["topics"]["signals.liander"]["messages"] > 0
        assert report["topics"]["feed.riec-nh"]["messages"] >= len(received)
        # the privacy officer's workplace answers on loopback (sign-in page)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/sign-in", timeout=10)
        assert page.status == 200 and b"<form" in page.read()
        still_reading = leave_and_keep_reading(env, f"http://127.0.0.1:{gateway_port}")
    finally:
        os.killpg(hub.pid, signal.SIGINT)
        code = hub.wait(60)
        log.close()
    if still_reading is not None:
        still_reading.join(30)
    text = (tmp_path / "up.log").read_text()
    assert code == 0, text
    assert "Schakel hub is up" in text and "stopping" in text
    assert_quiet(text)
    assert not (tmp_path / "var" / "hub.json").exists()
    # the embedded broker is gone with the hub
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "var" / "broker")], capture_output=True, check=False
    )
    assert leftover.stdout.strip() == b""
    # the audit log the router wrote is intact, checkpoints signed and witnessed
    verified = run_cli(["audit", "verify", "--json"], env)
    assert verified.returncode == 0, verified.stdout.decode() + verified.stderr.decode()
    report = orjson.loads(verified.stdout)
    assert report["ok"] is True
    assert (tmp_path / "var" / "audit-witness.jsonl").exists()
