"""End to end: `schakel up` serves the gateway; a partner publishes with the client and a
recipient reads its feed over HTTP, with tokens issued by `schakel gateway token issue`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import httpx
import orjson
import pytest

from services.broker.process import free_loopback_port
from services.client import FeedClient, SignalClient
from services.config import ROOT
from services.demo.keys import DemoSigner

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        timeout=120,  # as tests/hub/hub_process.py: a bound against a hang, not a speed limit
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def wait_for(url: str, hub: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert hub.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"gateway did not answer within {timeout} s:\n{log.read_text()}")


def recent(envelope: dict[str, object]) -> dict[str, object]:
    """An example signal dated yesterday and signed again: the hub decides on the real clock
    and refuses times older than every rule's retention (time_too_old)."""
    yesterday = datetime.now(UTC) - timedelta(days=1)
    return SIGN({**envelope, "time": yesterday.isoformat(timespec="seconds")})


SIGN = DemoSigner()


def test_up_serves_the_gateway_for_partners_and_recipients(tmp_path: Path):
    port = free_loopback_port()
    env = {
        **os.environ,
        "SCHAKEL_STATE_DIR": str(tmp_path / "var"),
        "SCHAKEL_KEYS": str(tmp_path / "var" / "keys.json"),
        "SCHAKEL_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'audit.db'}",
        "COLUMNS": "200",
    }
    env.pop("SCHAKEL_KAFKA_BOOTSTRAP", None)
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        hub = subprocess.Popen(
            [
                *(sys.executable, "-m", "services.cli", "up", "--demo", "--rate", "50"),
                *("--web-port", "0", "--gateway-port", str(port)),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(f"{url}/v1/openapi.json", hub, log_path)
            partner = cli(["gateway", "token", "issue", "--partner", "liander"], env).strip()
            recipient = cli(["gateway", "token", "issue", "--recipient", "riec-nh"], env).strip()

            with (ROOT / "examples" / "signals.jsonl").open("rb") as examples:
                liander = [
                    recent(orjson.loads(line))
                    for line in islice(examples, 400)
                    if b'"source":"liander"' in line and line.strip().startswith(b"{")
                ][:50]
            with SignalClient(url, partner, batch_size=20) as client:
                first = client.publish(liander)
                again = client.publish(liander)
            assert len(first.accepted) >= 40, first.rejected[:3]
            assert again.accepted == first.accepted

            received: list[dict[str, object]] = []
            with FeedClient(url, recipient) as feed:
                deadline = time.monotonic() + 90
                while len(received) < 10 and time.monotonic() < deadline:
                    received.extend(feed.page(limit=100, wait=5).messages)
            assert len(received) >= 10, log_path.read_text()
            assert len({m["exchange_id"] for m in received}) == len(received)

            status = orjson.loads(cli(["status", "--json"], env))
            assert status["topics"]["signals.liander"]["messages"] >= len(first.accepted)
        finally:
            hub.send_signal(signal.SIGINT)
            code = hub.wait(60)
    text = log_path.read_text()
    assert code == 0, text
    assert f"http://127.0.0.1:{port}/v1/" in text
