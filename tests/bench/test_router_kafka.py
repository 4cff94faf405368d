"""bench/router.py on a real broker: no figure for a run whose work was not done.

The 2026-11 router benchmark timed a workload whose every signature was broken: the router
dead-lettered each signal, its loop counted them as handled, and the figure was printed. Here
the harness is handed exactly that run (the workload check bypassed by passing the good
workload's expectation) and must refuse it from what it counts on the broker and in the store.
On the log-first paths the audit records are in the store only once the indexer wrote them: a
run whose audit topic was never indexed is refused too.
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


def test_a_log_first_run_whose_audit_was_never_indexed_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_router.Child, "indexing", lambda *_: None)  # no indexer runs
    good = workload(40, seed=12)
    with pytest.raises(Refused, match=r"audit records: expected 120, found 0"):
        asyncio.run(bench_router.throughput("tansu", "router", good, expectation(good)))


def test_a_good_run_reports_the_counts_it_checked_for_both_sides_and_both_phases() -> None:
    args = argparse.Namespace(
        signals=60, rate=60.0, seconds=1.0, repeat=1, fetch_wait_ms=10, audit_path="hub"
    )
    throughput, latency = asyncio.run(bench_router.measure("noida", args))
    want = {"signals": 60, "deliveries": 180, "audit_records": 180, "dead_letters": 0}
    assert throughput["checked"] == {
        "router": want,
        "passthrough": {"signals": 60, "deliveries": 180},
    }
    assert latency["checked"]["router"] == want
    assert latency["samples"] == 60  # every delivery to the latency recipient was timed
    assert throughput["hub_cpu_us"] > 0 and latency["hub"] > 0
    # noida has transactions: the hub's path, with the indexer's own figures beside
    assert throughput["audit_path"] == latency["audit_path"] == "transactional"
    assert "indexer" in throughput["name"]
    assert throughput["indexer_records_per_s"] > 0 and throughput["indexer_cpu_us"] > 0
    assert throughput["hub_and_indexer_cpu_us"] > throughput["hub_cpu_us"]
    assert latency["indexer_lag_p99_ms"] >= latency["indexer_lag_p50_ms"] > 0
    assert set(latency["target"]) == {"p99 <= 100 ms", "indexer lag p99 <= 1 s"}


def test_the_sql_path_is_measured_without_an_indexer_and_still_checked() -> None:
    good = workload(40, seed=13)
    phase = asyncio.run(
        bench_router.throughput("tansu", "router", good, expectation(good), audit_path="sql")
    )
    assert phase.path == "sql" and phase.indexed is None
    assert phase.checked.audit_records == 120  # written by the router itself
