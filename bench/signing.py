"""Cost of signature verification on the router's pure path (services/core/pipeline.py).

Hub figure: signals/s through ``process()`` with every signal signed and verified (canonical
JSON per RFC 8785 of the envelope as sent, then Ed25519 against the partner's registered key).
Baseline: the same ``process()`` on the same signals, unsigned, under a policy whose keyring
names nobody (so nothing is verified). The ratio is what signing costs the core path; the
bare Ed25519 verify time is printed beside it. No target of its own (the core and router
benchmarks, whose traffic is signed too, carry the targets). One core, one process.

    .venv/bin/python bench/signing.py [--signals 5000] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.core.covenant.checker import check  # noqa: E402
from services.core.covenant.compiler import compile_policy  # noqa: E402
from services.core.covenant.keyring import Keyring  # noqa: E402
from services.core.covenant.loader import load_files  # noqa: E402
from services.core.pipeline import process  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.core.regions import ReferenceData  # noqa: E402
from services.core.schema_registry import SchemaRegistry, default_schema_dir  # noqa: E402
from services.core.signing import canonical_envelope, parse_signature  # noqa: E402
from services.demo import generate  # noqa: E402
from services.demo.keys import demo_private_key  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402

BENCH_QUICK_ARGS = ["--signals", "1000"]  # make bench-quick (see bench/run.py)
BENCH_ARGS = ["--signals", "5000"]  # make bench


def best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=5_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line for make bench")
    args = parser.parse_args()

    registry = SchemaRegistry.load(default_schema_dir())
    checked = check(
        load_files([ROOT / "covenants"], demo=True),
        registry,
        ReferenceData.load(),
        today=date(2026, 11, 22),
    )
    assert checked.ok, [str(p) for p in checked.errors]
    signed_policy = compile_policy(checked, registry, Pseudonymiser(MemoryKeyStore.for_tests()))
    unsigned_policy = dataclasses.replace(signed_policy, keyring=Keyring(()))
    traffic = generate(args.signals, seed=7, start=datetime(2026, 9, 1, tzinfo=UTC)).signals
    signed = [orjson.dumps(s) for s in traffic]
    unsigned = [orjson.dumps({k: v for k, v in s.items() if k != "signature"}) for s in traffic]
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    keys = {s["source"]: demo_private_key(s["source"]).public_key() for s in traffic}
    bare = [
        (keys[s["source"]], parse_signature(s["signature"])[1], canonical_envelope(s))
        for s in traffic
    ]

    def hub() -> None:
        for raw in signed:
            assert process(raw, registry, signed_policy, now).rejection is None

    def baseline() -> None:
        for raw in unsigned:
            assert process(raw, registry, unsigned_policy, now).rejection is None

    def ed25519_only() -> None:
        for public, signature, message in bare:
            public.verify(signature, message)

    hub()
    baseline()  # warm caches (pseudonym keys, per-day indexes)
    hub_rate = len(signed) / best_of(3, hub)
    base_rate = len(unsigned) / best_of(3, baseline)
    verify_us = best_of(3, ed25519_only) / len(bare) * 1e6
    ratio = hub_rate / base_rate
    result = {
        "name": "signature verification (core path, signed vs unsigned)",
        "hub": round(hub_rate),
        "baseline": round(base_rate),
        "unit": "signals/s",
        "ratio": round(ratio, 4),
        "target": "- (cost of signing; core and router targets include it)",
        "pass": None,
    }
    if args.json:
        print(orjson.dumps(result).decode())
        return
    print(f"signals: {len(signed):,}  cores: {os.cpu_count()} (one used)")
    print(
        f"hub (process, signed + verified):  {hub_rate:>9,.0f} signals/s  ({1e6 / hub_rate:.1f} µs)"
    )
    print(
        f"baseline (process, unsigned):      {base_rate:>9,.0f} signals/s  ({1e6 / base_rate:.1f} µs)"
    )
    print(f"of which bare Ed25519 verify:      {verify_us:.1f} µs/signal")
    print(f"ratio hub/baseline: {ratio:.3f}  (+{1e6 / hub_rate - 1e6 / base_rate:.1f} µs/signal)")


if __name__ == "__main__":
    main()
