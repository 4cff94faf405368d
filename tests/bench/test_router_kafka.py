"""bench/router.py on a real broker: no figure for a run whose work was not done.

The 2026-11 router benchmark timed a workload whose every signature was broken: the router
dead-lettered each signal, its loop counted them as handled, and the figure was printed. Here
the harness is handed exactly that run (the workload check bypassed by passing the good
workload's expectation) and must refuse it from what it counts on the broker and in the store.
"""

from __future__ import annotations

import argparse
import asyncio

import pytest

from bench import router as bench_router
from bench.verify import Refused
from bench.workload import expectation, workload

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(300)]


def test_a_run_whose_signals_were_all_dead_lettered_is_refused() -> None:
    expected = expectation(workload(40, seed=11))
    broken = workload(40, seed=11, resign=False)  # same ids, signatures now wrong
    with pytest.raises(Refused, match=r"120 of 120 expected exchanges never reached a feed"):
        asyncio.run(bench_router.throughput("tansu", "router", broken, expected))


def test_a_good_run_reports_the_counts_it_checked_for_both_sides_and_both_phases() -> None:
    args = argparse.Namespace(signals=60, rate=60.0, seconds=1.0, repeat=1, fetch_wait_ms=10)
    throughput, latency = asyncio.run(bench_router.measure("noida", args))
    want = {"signals": 60, "deliveries": 180, "audit_records": 180, "dead_letters": 0}
    assert throughput["checked"] == {
        "router": want,
        "passthrough": {"signals": 60, "deliveries": 180},
    }
    assert latency["checked"]["router"] == want
    assert latency["samples"] == 60  # every delivery to the latency recipient was timed
    assert throughput["hub_cpu_us"] > 0 and latency["hub"] > 0
