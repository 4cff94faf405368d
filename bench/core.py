"""Policy throughput: decisions for a realistic signal mix fanned out to 3 recipients.

Hub figure: signals/s through the whole pure path the router runs per record — envelope
parse, schema validation, identifier normalisation, policy (conditions, transforms,
pseudonyms), and building each feed message and audit record. Baseline: merely parsing the
same bytes as JSON (orjson), so the ratio is the policy's overhead. One core, one process.

Every timed run must decide what the workload implies (bench/verify.py: the same signals
decided once untimed, refused unless every one is accepted) — signals, deliveries, audit
records and rejections counted in the run — or the script exits 3 (REFUSED).

    .venv/bin/python bench/core.py [--signals 30000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.verify import Counts, Refused, check, expect, refusing  # noqa: E402
from services.core.covenant.checker import check as check_covenants  # noqa: E402
from services.core.covenant.compiler import compile_policy  # noqa: E402
from services.core.covenant.loader import load_files  # noqa: E402
from services.core.pipeline import process  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.core.records import audit_record, feed_message  # noqa: E402
from services.core.regions import ReferenceData  # noqa: E402
from services.core.schema_registry import SchemaRegistry, default_schema_dir  # noqa: E402
from services.demo import generate  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402

TARGET = 25_000.0
BENCH_QUICK_ARGS = ["--signals", "2000"]  # make bench-quick (see bench/run.py)
BENCH_ARGS = ["--signals", "20000"]  # make bench
FANOUT_TYPES = {
    "energy.consumption_anomaly.v1",
    "water.abnormal_use.v1",
    "housing.observation.v1",
    "residents.anonymous_tip.v1",
}


def workload(count: int) -> list[bytes]:
    traffic = generate(count * 2, seed=7, start=datetime(2026, 9, 1, tzinfo=UTC))
    lines = [orjson.dumps(s) for s in traffic.signals if s["type"] in FANOUT_TYPES]
    while len(lines) < count:
        lines.extend(lines[: count - len(lines)])
    return lines[:count]


def source_of(raw: bytes) -> str:
    return str(orjson.loads(raw)["source"])


def best_of(runs: int, fn: object, setup: object = None) -> tuple[float, float]:
    """Best wall-clock seconds and best CPU seconds of this process over ``runs`` runs.

    On a shared machine the CPU time is the steadier figure: waiting for a core is not in it.
    """
    assert callable(fn)
    best = best_cpu = float("inf")
    for _ in range(runs):
        if callable(setup):
            setup()  # untimed
        gc.collect()
        cpu = time.process_time()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line for make bench")
    args = parser.parse_args()

    registry = SchemaRegistry.load(default_schema_dir())
    checked = check_covenants(
        load_files([ROOT / "bench" / "covenants"], demo=True),
        registry,
        ReferenceData.load(),
        today=date(2026, 11, 22),
    )
    if not checked.ok:
        raise Refused(f"bench/covenants do not check: {[str(p) for p in checked.errors]}")
    pseudonymiser = Pseudonymiser(MemoryKeyStore.for_tests())
    policy = compile_policy(checked, registry, pseudonymiser)
    lines = workload(args.signals)
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)

    expected = expect(((source_of(raw), raw) for raw in lines), registry, policy, now).counts
    done: list[Counts] = []

    def hub() -> None:
        decisions = records = deliveries = rejected = 0
        for raw in lines:
            outcome = process(raw, registry, policy, now)
            if outcome.rejection is not None:
                rejected += 1
                records += 1
                continue
            for decision in outcome.decisions:
                decisions += 1
                records += bool(audit_record(decision, actor="bench"))
                if decision.delivered:
                    deliveries += bool(feed_message(decision))
        done.append(Counts(len(lines), deliveries, records, rejected))

    def baseline() -> None:
        for raw in lines:
            orjson.loads(raw)

    hub()  # warm caches (derived keys, per-day index)
    # Each timed run starts without cached pseudonyms: the warm-up saw exactly these signals,
    # and live traffic does not repeat a whole batch, so only repeats within a run may hit.
    hub_s, hub_cpu_s = best_of(3, hub, setup=pseudonymiser.clear_cache)
    hits, misses, _ = pseudonymiser.cache_info()
    base_s, _ = best_of(3, baseline)
    for run in done:  # the warm-up and every timed run
        check("core policy", expected, run)
    decisions = (expected.audit_records or 0) - (expected.dead_letters or 0)
    hub_rate = len(lines) / hub_s
    base_rate = len(lines) / base_s
    fanout = decisions / len(lines)
    result = {
        "name": "core policy (3-recipient fan-out)",
        "hub": round(hub_rate),
        "baseline": round(base_rate),
        "unit": "signals/s",
        "ratio": round(hub_rate / base_rate, 4),
        "target": f">= {TARGET:,.0f} signals/s",
        "pass": hub_rate >= TARGET,
        "hub_cpu_us": round(hub_cpu_s / len(lines) * 1e6, 1),
        "checked": expected.as_json(),
    }
    if args.json:
        print(orjson.dumps(result).decode())
        return
    print(
        f"signals: {len(lines):,}  decisions/signal: {fanout:.2f}  cores: {os.cpu_count()} (one used)"
        f"  pseudonym cache hits: {hits / max(hits + misses, 1):.1%}"
    )
    print(
        f"hub (parse+validate+policy+records): {hub_rate:>10,.0f} signals/s  ({1e6 / hub_rate:.1f} µs/signal)"
    )
    print(
        f"hub, CPU time of this process:       {len(lines) / hub_cpu_s:>10,.0f} signals/CPU-s"
        f"  ({hub_cpu_s / len(lines) * 1e6:.1f} µs/signal)"
    )
    print(
        f"baseline (orjson.loads only):        {base_rate:>10,.0f} signals/s  ({1e6 / base_rate:.2f} µs/signal)"
    )
    print(
        f"ratio hub/baseline: {hub_rate / base_rate:.4f}   target: >= {TARGET:,.0f} signals/s -> "
        f"{'PASS' if hub_rate >= TARGET else 'FAIL'}"
    )


if __name__ == "__main__":
    refusing(main)
