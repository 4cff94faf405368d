"""A stop and start of `schakel up` loses nothing acknowledged (issue 15, item 1).

Each test runs the real hub (`python -m services.cli up`) twice on one state directory:
signals are published through its gateway, some are routed, the router is frozen so the rest
wait unread in the broker, the hub is stopped (Ctrl-C, or SIGKILL), started again, and then

* every signal the gateway acknowledged is routed (has its audit records), and
* every decision the audit records as delivered is in its recipient's feed.

With the memory-only Tansu the second point holds through the start-up recovery (the feed is
re-delivered from the audit store's outbox); the first cannot (the signals were only in the
broker's memory), which is why noida is the default and Tansu says so where it is used.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from services.broker.process import free_loopback_port
from services.client import SignalClient
from tests.hub.hub_process import (
    Hub,
    cli,
    delivered,
    example_signals,
    feed,
    hub_env,
    routed,
    wait_for,
)
from tests.kafka_fixtures import process_alive

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(600)]

PARTNER = "liander"


def publish_then_freeze_the_router(hub: Hub) -> tuple[set[tuple[str, str]], list[int]]:
    """Publish 50 signals and wait until they are routed; freeze the router workers (SIGSTOP)
    and publish 50 more, which the gateway acknowledges and nobody reads. Returns what the
    gateway acknowledged and the frozen routers' pids."""
    token = cli(["gateway", "token", "issue", "--partner", PARTNER], hub.env).strip()
    signals = example_signals(PARTNER, 100)
    with SignalClient(hub.url, token, batch_size=20) as client:
        early = client.publish(signals[:50]).accepted
        assert len(early) >= 30
        wait_for(lambda: {(PARTNER, s) for s in early} <= routed(hub.state), 180, "routed", hub.log)
        routers = hub.router_pids()
        assert routers
        for pid in routers:
            os.kill(pid, signal.SIGSTOP)
        late = client.publish(signals[50:]).accepted
        assert len(late) >= 30
    assert not {(PARTNER, s) for s in late} & routed(hub.state)  # they wait in the broker
    return {(PARTNER, s) for s in early + late}, routers


def assert_everything_arrives(hub: Hub, acknowledged: set[tuple[str, str]] | None) -> None:
    """Every acknowledged signal routed (unless None); every delivered decision in its feed."""
    bootstrap = hub.wait_until_serving().bootstrap
    if acknowledged is not None:
        wait_for(lambda: acknowledged <= routed(hub.state), 240, "all routed", hub.log)
    decided = delivered(hub.state)
    assert decided, "nothing was delivered: the test proves nothing"
    for recipient, exchange_ids in decided.items():
        missing = exchange_ids - feed(bootstrap, recipient)
        assert not missing, f"{len(missing)} delivered decision(s) missing in feed.{recipient}"


def second_run(log: Path) -> str:
    """What the second `schakel up` printed."""
    return log.read_text().split("Schakel hub is up")[-1]


def test_a_stop_and_start_of_the_default_hub_keeps_every_acknowledged_signal_and_delivery(
    tmp_path: Path,
):
    env = hub_env(tmp_path / "state")
    env.pop("SCHAKEL_EMBEDDED_BROKER", None)  # the default
    port, log = free_loopback_port(), tmp_path / "up.log"
    hub = Hub(env, port, log)
    try:
        state = hub.wait_until_serving()
        assert (state.broker, state.persistent) == ("noida", True)
        acknowledged, routers = publish_then_freeze_the_router(hub)
        for pid in routers:  # the routers die with the signals unread
            os.kill(pid, signal.SIGKILL)
        assert hub.interrupt() == 0, log.read_text()
    finally:
        if hub.process.poll() is None:
            hub.kill()
    hub = Hub(env, port, log)
    try:
        assert_everything_arrives(hub, acknowledged)
        banner = second_run(log)
        assert "persistent: topics, feed messages and committed offsets are kept" in banner
        # the broker kept the feeds: nothing had to be re-delivered
        assert "re-delivered" not in banner
        # where each part of the state is (item 12), all in the state directory
        state = tmp_path / "state"
        for part, where in [
            ("state", state),
            ("keys", state / "keys.json"),
            ("audit", f"sqlite:///{state}/audit.db"),
            ("witness", state / "audit-witness.jsonl"),
            ("kafka data", state / "broker"),
            ("logs", state / "logs"),
        ]:
            assert f"{part:<10} {where} " in banner, banner
    finally:
        assert hub.interrupt() == 0, log.read_text()
    assert list(hub.cwd.iterdir()) == []  # nothing in the working directory


def test_a_sigkill_of_the_default_hub_keeps_every_acknowledged_signal_and_delivery(
    tmp_path: Path,
):
    """SIGKILL of `schakel up`: the kernel sends its broker SIGTERM (parent-death signal), so
    noida saves what it holds; the workers get SIGTERM too and are gone with the hub."""
    env = hub_env(tmp_path / "state")
    env.pop("SCHAKEL_EMBEDDED_BROKER", None)
    port, log = free_loopback_port(), tmp_path / "up.log"
    hub = Hub(env, port, log)
    children: list[int] = []
    try:
        hub.wait_until_serving()
        acknowledged, routers = publish_then_freeze_the_router(hub)
        children = hub.children()
        assert len(children) >= 3  # broker, router, coverage
        for pid in routers:
            os.kill(pid, signal.SIGKILL)
        hub.kill()
    finally:
        if hub.process.poll() is None:
            hub.kill()

    # broker and workers go down with the hub (the frozen routers were killed above)
    def alive() -> list[str]:
        return [
            Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
            for p in children
            if process_alive(p)
        ]

    wait_for(lambda: not alive(), 120, "children gone", log, alive)
    hub = Hub(env, port, log)
    try:
        assert_everything_arrives(hub, acknowledged)
    finally:
        assert hub.interrupt() == 0, log.read_text()


def test_a_restart_of_the_memory_only_broker_re_delivers_every_unconsumed_delivery(
    tmp_path: Path,
):
    """Tansu keeps nothing: the start-up recovery puts every delivered decision back in its
    feed from the audit store, and the hub says the broker is memory only."""
    env = hub_env(tmp_path / "state", SCHAKEL_EMBEDDED_BROKER="tansu")
    port, log = free_loopback_port(), tmp_path / "up.log"
    hub = Hub(env, port, log)
    try:
        state = hub.wait_until_serving()
        assert (state.broker, state.persistent) == ("tansu", False)
        status = cli(["status"], env)
        assert "MEMORY ONLY" in status
        token = cli(["gateway", "token", "issue", "--partner", PARTNER], env).strip()
        with SignalClient(hub.url, token, batch_size=20) as client:
            accepted = client.publish(example_signals(PARTNER, 50)).accepted
        wait_for(lambda: {(PARTNER, s) for s in accepted} <= routed(hub.state), 180, "", log)
        assert hub.interrupt() == 0, log.read_text()
    finally:
        if hub.process.poll() is None:
            hub.kill()
    hub = Hub(env, port, log)
    try:
        assert_everything_arrives(hub, None)
        text = second_run(log)
        assert "MEMORY ONLY" in text
        assert "re-delivered them" in text
    finally:
        assert hub.interrupt() == 0, log.read_text()
    leftover = subprocess.run(
        ["pgrep", "-f", str(tmp_path / "state" / "broker")], capture_output=True, check=False
    )
    assert leftover.stdout.strip() == b""
