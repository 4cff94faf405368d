"""1, 2 and 4 router workers in one group on the embedded broker: the partitions are shared
between them, and every decision is audited exactly once.

Each worker is a real process (``python -m services.cli router``) with its own metrics port,
so the test also sees, from outside, what an operator's Prometheus would: every worker ready
(broker reachable, store open, partitions assigned) and the partitions split between them.
The hub set-up and traffic helpers are those of test_workers_kafka.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.broker.embedded import EmbeddedBroker
from services.hub.workers import WorkerPool
from services.router.topics import SIGNALS_PREFIX
from tests.kafka_fixtures import selected_brokers
from tests.postgres_fixtures import free_port
from tests.router.helpers import lines, traffic
from tests.router.test_workers_kafka import (
    Hub,
    assert_exactly_once,
    expected_ids,
    hub_on,
    publish,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture
def scale_hub(broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path) -> Iterator[Hub]:
    """A fresh broker (the first of SCHAKEL_TEST_BROKERS: three worker counts on each broker
    would take minutes), the hub's topics and an empty SQLite audit store."""
    yield from hub_on(broker_factory(selected_brokers()[0]), tmp_path)


def start_workers(hub: Hub, count: int) -> list[str]:
    """``count`` workers in one group, each with its own instance id and metrics port."""
    hub.index()  # the audit indexer writes the records counted on the log-first path
    urls = []
    for index in range(count):
        port = free_port()
        env = hub.env() | {"SCHAKEL_METRICS_PORT": str(port)}
        pool = WorkerPool(
            1,
            env,
            hub.db.parent / "logs" / f"w{index}",
            extra_args=("--instance", f"scale-{index}", "--batch", "200"),
        )
        pool.start()
        hub.pools.append(pool)
        urls.append(f"http://127.0.0.1:{port}")
    return urls


def scrape(url: str) -> dict[str, float]:
    """``name{labels}`` -> value of the worker's metrics (only unlabelled and summed here)."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_workers_share_partitions_and_audit_every_decision_once(scale_hub: Hub, workers: int):
    hub = scale_hub
    values = lines(traffic(1200, seed=30 + workers))
    expected = expected_ids(hub, values)
    urls = start_workers(hub, workers)
    signal_partitions = sum(n for t, n in hub.spec.items() if t.startswith(SIGNALS_PREFIX))
    signal_partitions -= hub.spec["signals.dead-letter"]

    def balanced() -> bool:
        if not all(ready(url) for url in urls):
            return False
        owned = [scrape(url)["schakel_consumer_assigned_partitions"] for url in urls]
        return all(owned) and sum(owned) == signal_partitions

    wait_for(balanced, 150, f"{workers} ready worker(s) sharing {signal_partitions} partitions")
    publish(hub.settings, values)
    wait_for(lambda: len(hub.audit_ids()) >= len(expected), 150, "every decision audited")
    time.sleep(1.0)  # a straggler duplicate would land now
    assert_exactly_once(hub, expected)
    seen = [scrape(url) for url in urls]
    consumed = sum(m.get("schakel_signals_in_total", 0.0) for m in seen)
    assert consumed >= len(values)  # a rebalance may make a worker re-read, never skip
    assert sum(m.get("schakel_router_batches_total", 0.0) for m in seen) >= workers
    if workers > 1:
        working = [m for m in seen if m.get("schakel_signals_in_total", 0.0) > 0]
        assert len(working) == workers, "every worker routed part of the traffic"
