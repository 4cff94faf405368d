"""Stacking throughput: signals/s through the stacking logic and its SQL store, with 100,000
locations already tracked.

Hub figure: per batch of 1,000 validated signals, what the stacking worker does after the
router's validation — extract the evidence (hub-internal pseudonyms of the location, its
reversible locator, partner kind, strength), apply the rule to the location's evidence,
decide alerts, and write the batch's evidence, locations, aliases and alerts to SQLite in one
transaction. Baseline: appending the same evidence to a plain ``dict`` of lists (no rule, no
store), so the ratio is the cost of the rule and durability. Validation and signature checks
are the router's own path (``bench/core.py``) and are left out of both. One core, one process.

Before a figure is printed the store is checked (bench/verify.py): every signal of the
workload that yields evidence (found untimed, beforehand) must have its evidence stored, counted
as rows in the store after the run; otherwise the script exits 3 (REFUSED).

    .venv/bin/python bench/stacking.py [--signals 20000] [--tracked 100000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.verify import Counts, Refused, check, refusing  # noqa: E402
from services.config import Paths, load_policy  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.core.signal import Signal, accept_bytes  # noqa: E402
from services.core.stacking.config import StackingConfig  # noqa: E402
from services.core.stacking.engine import Changes, Stacker  # noqa: E402
from services.core.stacking.evidence import Evidence  # noqa: E402
from services.core.stacking.extract import Extractor  # noqa: E402
from services.core.stacking.purpose import StackingRules  # noqa: E402
from services.database.engine import make_engine  # noqa: E402
from services.demo import generate  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402
from services.stacking.config_files import load_stacking_config  # noqa: E402
from services.stacking.store import SqlStackingStore  # noqa: E402

TARGET = 10_000.0
BENCH_QUICK_ARGS = ["--signals", "2000", "--tracked", "5000"]
BENCH_ARGS: list[str] = []
BATCH = 1000
NOW = datetime(2026, 11, 1, tzinfo=UTC)
KINDS = ("energy", "water", "housing", "residents", "rural", "chemicals")


def tracked_changes(count: int, seed: int = 1) -> Changes:
    """``count`` tracked locations with one or two pieces of (synthetic) evidence each."""
    rng = random.Random(seed)
    changes = Changes()
    start = datetime(2026, 8, 1, tzinfo=UTC)
    for n in range(count):
        location = f"p1.bench{n:026d}"
        changes.locations[location] = ("GM0361", None)
        for k in range(rng.choice((1, 1, 2))):
            changes.evidence.append(
                (
                    location,
                    Evidence(
                        source=f"partner-{k}",
                        signal_id=f"bench-{n}-{k}",
                        partner_kind=KINDS[k],
                        signal_type="energy.consumption_anomaly.v1",
                        barrier_steps=("cannabis.cultivate",),
                        time=start + timedelta(hours=rng.randrange(24 * 60)),
                        strength=round(rng.random(), 3),
                    ),
                )
            )
    return changes


def workload(count: int) -> tuple[list[Signal], StackingConfig, Extractor]:
    """Validated demo signals a stacking rule applies to, and the stacking set-up."""
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(MemoryKeyStore.for_tests())
    loaded = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        pseudonymiser,
        today=NOW.date(),
        demo=True,
    )
    if loaded.policy is None:
        raise Refused(
            "the shipped covenants do not check: "
            + "; ".join(str(p) for p in loaded.checked.errors)
        )
    policy = loaded.policy
    config = load_stacking_config(paths.covenants)
    rules = StackingRules(policy, config.purpose)
    traffic = generate(count * 2, seed=7, start=datetime(2026, 9, 1, tzinfo=UTC))
    signals: list[Signal] = []
    for envelope in traffic.signals:
        signal = accept_bytes(orjson.dumps(envelope), loaded.registry)
        if policy.stacking_use(signal, NOW).rule is not None:  # as the worker decides
            signals.append(signal)
    return signals[:count], config, Extractor(config, pseudonymiser, rules.partner_kinds)


STORED_EVIDENCE = text(
    "SELECT COUNT(*) FROM (SELECT DISTINCT source, signal_id FROM stacking_evidence "
    "WHERE signal_id NOT LIKE 'bench-%')"
)
"""Signals of the workload with evidence in the store (the pre-filled ids start with bench-)."""


def expected_evidence(signals: list[Signal], extractor: Extractor) -> int:
    """Signals that yield evidence, found before and apart from the timed run."""
    return len({(s.source, s.id) for s in signals if extractor.observe(s) is not None})


def run_hub(
    signals: list[Signal], config: StackingConfig, extractor: Extractor, tracked: int
) -> dict[str, float]:
    """Pre-fill the store with ``tracked`` locations, load it, then stack ``signals``."""
    with tempfile.TemporaryDirectory() as tmp:
        store_engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store = SqlStackingStore(store_engine)
        store.create_schema()
        t0 = time.perf_counter()
        store.write(tracked_changes(tracked))
        t1 = time.perf_counter()
        stacker = Stacker(config, store.load())
        t2 = time.perf_counter()
        gc.collect()
        gc.freeze()
        alerts = 0
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(signals), BATCH):
            observations = [o for s in signals[i : i + BATCH] if (o := extractor.observe(s))]
            changes = stacker.apply(observations, NOW)
            alerts += len(changes.alerts)
            store.write(changes)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        with store_engine.connect() as connection:
            stored = int(connection.execute(STORED_EVIDENCE).scalar_one())
        store.close()
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "alerts": alerts,
        "tracked_after": len(stacker.locations),
        "prefill_s": t1 - t0,
        "load_s": t2 - t1,
        "stored": stored,
    }


def run_baseline(signals: list[Signal], extractor: Extractor) -> float:
    """Seconds to append the same evidence to a plain dict of lists."""
    observations = [o for s in signals if (o := extractor.observe(s))]
    start = time.perf_counter()
    plain: dict[str, list[Evidence]] = {}
    for o in observations:
        plain.setdefault(o.primary or o.others[0], []).append(o.evidence)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--tracked", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    signals, config, extractor = workload(args.signals)
    evidence = expected_evidence(signals, extractor)
    if not evidence:
        raise Refused(f"none of the {len(signals):,} workload signals yields evidence")
    hub = run_hub(signals, config, extractor, args.tracked)
    checked = check(
        "stacking",
        Counts(signals=len(signals), evidence=evidence),
        Counts(signals=len(signals), evidence=int(hub["stored"])),
    ).as_json()
    base_s = run_baseline(signals, extractor)
    n = len(signals)
    hub_rate, cpu_rate, base_rate = n / hub["wall_s"], n / hub["cpu_s"], n / base_s
    target = f">= {TARGET:,.0f} signals/s on one core"
    common = {"baseline": round(base_rate), "unit": "signals/s", "target": target}
    result = [
        {
            "name": f"stacking, {n:,} signals onto {args.tracked:,} tracked (wall clock)",
            "hub": round(hub_rate),
            "ratio": round(hub_rate / base_rate, 4),
            "pass": hub_rate >= TARGET,
            "checked": checked,
            **common,
        },
        {
            "name": "stacking, same run (per CPU-second of the process)",
            "hub": round(cpu_rate),
            "ratio": round(cpu_rate / base_rate, 4),
            "pass": cpu_rate >= TARGET,
            "hub_cpu_us": round(hub["cpu_s"] / n * 1e6, 1),
            "checked": checked,
            **common,
        },
    ]
    if args.json:
        print(orjson.dumps(result).decode())
        return
    print(
        f"stacking: {n:,} signals onto {args.tracked:,} tracked locations "
        f"({hub['tracked_after']:,} after), {hub['alerts']:.0f} alert revisions"
    )
    print(f"  hub      {hub_rate:>10,.0f} signals/s wall clock ({1e6 / hub_rate:.1f} µs/signal)")
    print(f"           {cpu_rate:>10,.0f} signals per CPU-second of this process")
    print(f"  baseline {base_rate:>10,.0f} signals/s (dict of lists)")
    print(f"  ratio    {hub_rate / base_rate:.4f}")
    print(f"  start-up: pre-fill {hub['prefill_s']:.1f} s, load of the state {hub['load_s']:.1f} s")
    verdict = {True: "pass", False: "FAIL"}
    print(
        f"  target   >= {TARGET:,.0f} signals/s on one core: wall {verdict[hub_rate >= TARGET]}, "
        f"CPU {verdict[cpu_rate >= TARGET]}"
    )


if __name__ == "__main__":
    refusing(main)
