"""Running `schakel up` as a user does, for the restart tests: start it, wait until it serves,
publish through its gateway, read what its broker and audit store hold, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

import httpx
import orjson
from kafka import KafkaConsumer, TopicPartition

from services.audit.store import SqlAuditStore
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.config import ROOT
from services.database.engine import make_engine
from services.demo.keys import DemoSigner
from services.hub.state import HubState
from services.router.topics import feed_topic


def hub_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment of a test hub: its own state, and demo mode (the example signals are
    signed with the demo partners' TEST keys), without the demo's own traffic."""
    env = {
        **os.environ,
        "SCHAKEL_STATE_DIR": str(state),
        "SCHAKEL_DEMO": "1",
        "COLUMNS": "250",
        **extra,
    }
    for name in ("SCHAKEL_KAFKA_BOOTSTRAP", "SCHAKEL_KEYS", "SCHAKEL_DATABASE_URL"):
        env.pop(name, None)
    return env


def cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    return done.stdout.decode()


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    log: Path,
    why: Callable[[], object] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    detail = f" ({why()})" if why is not None else ""
    raise AssertionError(f"{what}: not within {timeout:.0f} s{detail}\n{log.read_text()[-4000:]}")


class Hub:
    """One `schakel up` process (no demo, web off, gateway on ``port``)."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.cwd = self.state.parent / "cwd"  # not the state dir's parent: nothing lands here
        self.cwd.mkdir(exist_ok=True)
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "services.cli", "up"),
                    *("--web-port", "0", "--gateway-port", str(port)),
                ],
                cwd=self.cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def state(self) -> Path:
        return Path(self.env["SCHAKEL_STATE_DIR"])

    def wait_until_serving(self) -> HubState:
        def serving() -> bool:
            assert self.process.poll() is None, self.log.read_text()
            try:
                return httpx.get(f"{self.url}/v1/openapi.json", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(serving, 180, "gateway answering", self.log)
        hub = HubState.read(self.state / "hub.json")
        assert hub is not None and hub.pid == self.process.pid
        return hub

    def children(self) -> list[int]:
        """The hub's child processes, whichever of its threads forked them (from /proc)."""
        tasks = Path(f"/proc/{self.process.pid}/task")
        return [int(p) for task in tasks.iterdir() for p in (task / "children").read_text().split()]

    def router_pids(self) -> list[int]:
        """The router workers among the hub's children."""
        return [
            pid
            for pid in self.children()
            if b"\x00router\x00" in Path(f"/proc/{pid}/cmdline").read_bytes() + b"\x00"
        ]

    def interrupt(self, timeout: float = 120) -> int:
        """Ctrl-C, and the exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)


def example_signals(partner: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` well-formed signals of ``partner`` in examples/signals.jsonl, dated
    yesterday and signed again with its TEST key (the hub refuses signals older than any
    rule keeps them, and the examples are from September and October 2026)."""
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    sign = DemoSigner()
    with (ROOT / "examples" / "signals.jsonl").open("rb") as lines:
        wanted = (
            orjson.loads(line)
            for line in lines
            if f'"source":"{partner}"'.encode() in line and line.strip().startswith(b"{")
        )
        return [
            sign({**{k: v for k, v in s.items() if k != "signature"}, "time": yesterday})
            for s in islice(wanted, count)
        ]


def audit_records(state: Path) -> list[dict[str, Any]]:
    store = SqlAuditStore(make_engine(f"sqlite:///{state / 'audit.db'}"))
    try:
        out: list[dict[str, Any]] = []
        after = 0
        while page := store.records(after_seq=after, limit=5000):
            out += [record for _, record in page]
            after = page[-1][0]
        return out
    finally:
        store.close()


def routed(state: Path) -> set[tuple[str, str]]:
    """(source, signal id) of every signal the router decided on or rejected (the stacking
    worker's `use` records, written by another consumer of the same topics, do not count)."""
    return {(r["origin"], r["signal_id"]) for r in audit_records(state) if r["action"] != "use"}


def delivered(state: Path) -> dict[str, set[str]]:
    """Recipient → the exchange ids the recipients were given (``feed_exchange_id``, the keyed
    id of each decision the audit records as delivered)."""
    out: dict[str, set[str]] = {}
    for record in audit_records(state):
        if record["result"] == "delivered":
            out.setdefault(record["recipient"], set()).add(record["feed_exchange_id"])
    return out


def feed(bootstrap: str, recipient: str) -> set[str]:
    """Exchange ids in the recipient's feed topic, read from the beginning to its end."""
    settings = KafkaSettings.local(bootstrap)
    topic = feed_topic(recipient)
    with KafkaTopicAdmin(settings) as admin:
        ends = admin.end_offsets(topic)
    consumer = KafkaConsumer(
        **settings.client_kwargs_kafka_python(), enable_auto_commit=False, group_id=None
    )
    try:
        parts = [TopicPartition(topic, p) for p in ends]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        seen: set[str] = set()
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp.partition] for tp in parts):
            assert time.monotonic() < deadline, f"{topic} not read to its end within 60 s"
            for batch in consumer.poll(timeout_ms=500).values():
                seen.update(orjson.loads(m.value)["exchange_id"] for m in batch)
        return seen
    finally:
        consumer.close()
