"""Cost of reading partner input as strict I-JSON (services/core/strict_json.py), per signal.

Hub figure: signals/s through ``strict_json.loads`` (orjson parse, orjson rewrite, ``:`` count,
a walk over the numbers). Baseline: plain ``orjson.loads`` of the same bytes. Also printed:
the envelope path before and after (the router used to parse each signal twice: pydantic's
JSON reader for the envelope and orjson again for the signature; now one strict read feeds
both), and the exact reader that input failing the fast test takes. No target of its own: the
core and router benchmarks include the strict read. CPU time, best of several runs; one core.

    .venv/bin/python bench/strict_json.py [--signals 5000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.core import strict_json  # noqa: E402
from services.core.envelope import Envelope  # noqa: E402
from services.core.errors import SignalRejected  # noqa: E402
from services.demo import generate  # noqa: E402

BENCH_QUICK_ARGS = ["--signals", "1000"]  # make bench-quick (see bench/run.py)
BENCH_ARGS = ["--signals", "5000"]  # make bench


def best_of(runs: int, fn: Callable[[], object]) -> float:
    """Least CPU seconds of ``runs`` calls (CPU time: other load on the machine does not count)."""
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def per_signal_us(raws: list[bytes], read: Callable[[bytes], object], runs: int) -> float:
    return best_of(runs, lambda: [read(raw) for raw in raws]) / len(raws) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON line for make bench")
    args = parser.parse_args()

    traffic = generate(args.signals, seed=7, start=datetime(2026, 9, 1, tzinfo=UTC)).signals
    raws = [orjson.dumps(s) for s in traffic]
    escaped = [raw.replace(b'"time":"', b'"time\\u003a":"x","time":"', 1) for raw in raws[:500]]

    def before(raw: bytes) -> object:  # the envelope, then the signature's own parse
        Envelope.model_validate_json(raw)
        return orjson.loads(raw)

    def after(raw: bytes) -> object:  # one strict read feeds both
        sent = strict_json.loads(raw)
        Envelope.model_validate(sent)
        return sent

    def slow(raw: bytes) -> object:
        try:
            return strict_json.loads(raw)
        except SignalRejected:
            return None

    strict_us = per_signal_us(raws, strict_json.loads, args.runs)
    plain_us = per_signal_us(raws, orjson.loads, args.runs)
    before_us = per_signal_us(raws, before, args.runs)
    after_us = per_signal_us(raws, after, args.runs)
    slow_us = per_signal_us(escaped, slow, args.runs)
    result = {
        "name": "strict I-JSON read (strict_json.loads vs orjson.loads)",
        "hub": round(1e6 / strict_us),
        "baseline": round(1e6 / plain_us),
        "unit": "signals/s",
        "ratio": round(plain_us / strict_us, 4),
        "target": "- (cost of strict reading; core and router targets include it)",
        "pass": None,
    }
    if args.json:
        print(orjson.dumps(result).decode())
        return
    size = sum(map(len, raws)) / len(raws)
    print(f"signals: {len(raws):,} (mean {size:.0f} bytes)  cores: {os.cpu_count()} (one used)")
    print(f"orjson.loads:                         {plain_us:6.2f} µs/signal")
    print(
        f"strict_json.loads (fast path):        {strict_us:6.2f} µs/signal"
        f"  (+{strict_us - plain_us:.2f} µs)"
    )
    print(f"envelope path before (pydantic JSON + orjson): {before_us:6.2f} µs/signal")
    print(
        f"envelope path now (strict + pydantic dict):    {after_us:6.2f} µs/signal"
        f"  ({after_us - before_us:+.2f} µs)"
    )
    print(f"exact reader (input failing the fast test):   {slow_us:6.2f} µs/signal")


if __name__ == "__main__":
    main()
