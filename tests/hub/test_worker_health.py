"""A worker that keeps exiting is reported, never counted as running (issue 15, F1).

The hub writes how each worker is doing to ``$SCHAKEL_STATE_DIR/workers.json``; `schakel
status` reads it. The kafka tests run the real `schakel up`, so a worker command that cannot
start (as the outcomes worker once could not) fails a test here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from services.broker.process import free_loopback_port
from services.config import Paths
from services.hub.worker_health import (
    LOOPING_EXITS,
    WorkerHealth,
    health_path,
    read_health,
    write_health,
)
from services.hub.workers import WorkerPool
from tests.hub.hub_process import Hub, cli, hub_env, wait_for

HUB_WORKERS = {"router", "indexer", "stacking", "coverage", "outcomes", "riec"}
"""Every worker command `schakel up` starts (services/hub/up.py)."""


@pytest.mark.timeout(90)
def test_a_worker_that_keeps_exiting_is_reported_with_its_exit_code_and_log(tmp_path: Path):
    pool = WorkerPool(1, {}, tmp_path / "logs", name="outcomes", command=("no-such-verb",))
    pool.start()
    try:
        deadline = time.monotonic() + 60
        while len(pool.health()[0].exits) < LOOPING_EXITS:
            assert time.monotonic() < deadline, "the worker did not exit three times in 60 s"
            pool.supervise()
            time.sleep(0.1)
    finally:
        pool.stop(timeout=5)
    path = tmp_path / "workers.json"
    write_health(path, pool.health())
    [worker] = read_health(path)
    now = time.time()
    assert worker.looping(now)
    assert worker.state(now) == "CRASH-LOOPING"
    assert worker.last_exit_code == 2  # typer: no such command
    assert worker.restarts >= LOOPING_EXITS - 1
    problem = worker.problem(now)
    assert problem is not None
    assert problem.startswith("outcomes worker 0 keeps exiting: restarted ")
    assert "last exit code 2" in problem
    assert str(tmp_path / "logs" / "outcomes-0.log") in problem


def test_a_worker_that_exited_long_ago_is_well_and_a_broken_file_reads_as_none(tmp_path: Path):
    old = time.time() - 3600
    worker = WorkerHealth("router", 0, 42, True, 5, (old, old + 1, old + 2), 1, "x.log")
    assert not worker.looping(time.time())
    assert worker.problem(time.time()) is None
    assert worker.state(time.time()) == "running"
    broken = tmp_path / "workers.json"
    broken.write_text("[{")
    assert read_health(broken) == []
    assert read_health(tmp_path / "missing.json") == []


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_worker_the_hub_starts_stays_up_and_a_crash_loop_shows_in_status(tmp_path: Path):
    """The real `schakel up` with the stacking worker's key file missing: that worker exits at
    every start; the router, coverage and outcomes workers start and stay up."""
    state = tmp_path / "state"
    env = hub_env(state, SCHAKEL_STACKING_KEY_FILE=str(tmp_path / "no-such-key.json"))
    hub = Hub(env, free_loopback_port(), tmp_path / "hub.log")
    try:
        hub.wait_until_serving()
        path = health_path_of(state)

        def stacking_looping() -> bool:
            workers = {w.name: w for w in read_health(path)}
            stacking = workers.get("stacking")
            return stacking is not None and stacking.looping(time.time())

        wait_for(stacking_looping, 360, "stacking reported as crash-looping", hub.log)
        time.sleep(3)  # the healthy ones have had well over ten seconds to fail by now
        workers = {w.name: w for w in read_health(path)}
        assert set(workers) == HUB_WORKERS
        for name in HUB_WORKERS - {"stacking"}:
            worker = workers[name]
            assert worker.running, f"{name}: {Path(worker.log).read_text()[-2000:]}"
            assert not worker.exits, f"{name} exited: {Path(worker.log).read_text()[-2000:]}"
            assert worker.pid is not None
            os.kill(worker.pid, 0)  # alive
        status = orjson.loads(cli(["status", "--json"], {**env, "COLUMNS": "250"}))
        shown = {w["name"]: w for w in status["workers"]}
        assert shown["stacking"]["state"] == "CRASH-LOOPING"
        assert shown["stacking"]["last_exit_code"] == 1
        assert shown["stacking"]["problem"].startswith("stacking worker 0 keeps exiting")
        assert shown["router"]["state"] == "running"
        text = cli(["status"], env)
        assert "stacking worker 0 keeps exiting: restarted" in text
        assert "stacking-0.log" in text
        assert "keeps exiting" in hub.log.read_text()  # the hub's console says it too
    finally:
        hub.interrupt()
    assert not health_path_of(state).exists()  # a stopped hub leaves no stale worker report


def health_path_of(state: Path) -> Path:
    return health_path(Paths.from_env({"SCHAKEL_STATE_DIR": str(state)}))
