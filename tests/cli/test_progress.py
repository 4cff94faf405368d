"""Progress of long work: a Rich bar with counts and time left on a terminal, plain lines (or
nothing, for short work) elsewhere; services only call the callback they were given."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from services.audit.checkpoint import CheckpointPolicy, KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.export import bundle_records, write_bundle
from services.audit.reading import chain_records
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore
from services.audit.verify import verify
from services.cli.progress import progress
from services.config import Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.demo.generator import generate
from services.keys.testing import MemoryKeyStore
from services.replay.runner import replay
from tests.audit.test_store import decision_record

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Heard:
    """A :class:`~services.core.progress.Progress` that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None = None, /) -> None:
        self.calls.append((done, total))


# --- what is shown ----------------------------------------------------------------------------


def test_a_terminal_gets_a_bar_with_the_count_and_the_time_left():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, color_system=None)
    clock = Clock()
    with progress("verifying audit records", 1_000_000, console=console, clock=clock) as told:
        clock.now += 10
        told(250_000)
        time.sleep(0.4)  # Rich redraws ten times a second
    shown = out.getvalue()
    assert "verifying audit records" in shown
    assert "250000/1000000" in shown and "25%" in shown
    assert "about 30 s left" in shown, "a quarter in 10 s: 30 s left"


def test_piped_output_stays_silent_for_short_work():
    out = io.StringIO()
    console = Console(file=out, width=120)
    clock = Clock()
    with progress("exporting audit records", 5_000, console=console, clock=clock) as told:
        clock.now += 3
        told(5_000)
    assert out.getvalue() == ""


def test_piped_output_gets_a_plain_line_now_and_then_with_counts_and_time_left():
    out = io.StringIO()
    console = Console(file=out, width=200)
    clock = Clock()
    with progress("verifying audit records", 1_000_000, console=console, clock=clock) as told:
        for step in range(1, 6):  # every 5 s; a line at most every 10 s
            clock.now += 5
            told(step * 100_000)
    lines = out.getvalue().splitlines()
    assert lines == [
        "verifying audit records: 200,000 of 1,000,000 (20%), about 40 s left",
        "verifying audit records: 400,000 of 1,000,000 (40%), about 30 s left",
        "verifying audit records: 500,000 done in 25 s",
    ]
    assert "\x1b" not in out.getvalue()


# --- what the services tell ------------------------------------------------------------------


def test_verify_and_export_tell_how_many_records_are_done(tmp_path: Path):
    store = MemoryAuditStore()
    store.record([decision_record(n) for n in range(20_005)], [])
    heard = Heard()
    assert verify(chain_records(store), [], {}, progress=heard).ok
    assert heard.calls == [(10_000, None), (20_000, None), (20_005, None)]
    exported = Heard()
    bundle = tmp_path / "bundle.jsonl"
    write_bundle(bundle, chain_records(store), [], {}, datetime.now(UTC), progress=exported)
    assert exported.calls[-1] == (20_005, None)
    assert bundle_records(bundle) == 20_005


def test_a_purge_tells_how_many_records_are_gone_of_how_many(tmp_path: Path, monkeypatch):
    import services.audit.store as store_module

    monkeypatch.setattr(store_module, "PURGE_CHUNK", 4)
    keys = MemoryKeyStore.for_tests()
    store = SqlAuditStore.open(
        f"sqlite:///{tmp_path / 'audit.db'}",
        Checkpointer(KeyStoreSigner(keys), None, CheckpointPolicy(every_records=5)),
    )
    try:
        store.record([decision_record(n) for n in range(10)], [])
        heard = Heard()
        assert store.purge(datetime.now(UTC) + timedelta(days=1), progress=heard) is not None
        assert heard.calls == [(0, 10), (4, 10), (8, 10), (10, 10)]
        assert verify(chain_records(store), store.checkpoints(), {}, store.purges()).records == 1
    finally:
        store.close()


def test_generating_and_replaying_tell_how_far_they_are(tmp_path: Path):
    heard = Heard()
    traffic = generate(600, seed=1, start=datetime(2026, 9, 1, tzinfo=UTC), progress=heard)
    assert heard.calls[-1] == (600, 600)
    dones = [done for done, _ in heard.calls]
    assert dones == sorted(dones) and len(set(dones)) > 10, "it moves, and only forward"
    paths = Paths.from_env({})
    loaded = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()),
        today=datetime(2026, 10, 1, tzinfo=UTC).date(),
    )
    assert loaded.policy is not None
    replayed = Heard()
    lines = [line + b"\n" for line in traffic.lines()]
    replay(
        lines,
        loaded.registry,
        loaded.policy,
        tmp_path / "out",
        clock=lambda: datetime.now(UTC),
        progress=replayed,
    )
    assert replayed.calls == [(len(lines), None)]


# --- the command, on a terminal and in a pipe -------------------------------------------------


@pytest.fixture
def database(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = SqlAuditStore.open(url)
    store.record([decision_record(n) for n in range(2_000)], [])
    store.close()
    return {
        **os.environ,
        "SCHAKEL_DATABASE_URL": url,
        "SCHAKEL_STATE_DIR": str(tmp_path / "var"),  # never the checkout's var/
        "SCHAKEL_KEYS": str(tmp_path / "var" / "keys.json"),
        "TERM": "xterm",
        "COLUMNS": "120",
    }


def test_verify_in_a_pipe_prints_its_result_and_no_progress(database: dict[str, str]):
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "verify"],
        env=database,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().startswith("audit log intact: 2000 records")
    assert done.stderr == b""


def test_verify_on_a_terminal_shows_the_bar(database: dict[str, str]):
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "audit", "verify"],
        env=database,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            shown += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert out.decode().startswith("audit log intact: 2000 records")
    assert b"verifying audit records" in shown
    assert b"/2000" in shown
