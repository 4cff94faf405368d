"""Cost of signature verification on the router's pure path (services/core/pipeline.py).

Hub figures: signals/s through ``process()`` with every signal signed and verified, once with
a single Ed25519 signature per signal (canonical JSON per RFC 8785 of the envelope as sent,
then Ed25519 against the partner's registered key) and once signed in batches of
``--batch`` (services/core/batch_signing.py: one root signature per batch, verified once and
remembered; each signal's RFC 9162 inclusion path checked with a few SHA-256). Baseline: the
same ``process()`` on the same signals, unsigned, under a policy whose keyring names nobody
(so nothing is verified). A third row sets the signature check alone (``verify_envelope``)
per signal for batches against single signatures. Every run starts with an empty memory of
verified roots, so each batch pays its one Ed25519 verification. No target of its own (the
core and router benchmarks, whose traffic is signed too, carry the targets). One core, one
process; times are the process's CPU time (best of ``--runs``), so other load on the machine
inflates them less than wall-clock time would. Batches are formed per source partner in
traffic order, so a partner with fewer signals than ``--batch`` signs a smaller batch: the
mean batch size is printed (``--signals 20000`` gives batches of about the full size).

Before printing it checks its work (bench/verify.py): every timed run of every variant must
make the decisions the workload implies (decided once untimed, every signal accepted), every
signal's outcome must carry the proof of the form it was signed in, each batch root must be
verified exactly once per run, and every signature check and inclusion path timed alone must
succeed; otherwise the script exits 3 (REFUSED). ``--json`` rows carry the counts checked.

    .venv/bin/python bench/signing.py [--signals 5000] [--batch 512] [--runs 3] [--json]
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
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.verify import Counts, Refused, check, expect, refusing  # noqa: E402
from services.core.batch_signing import parse_batch, sign_batch  # noqa: E402
from services.core.covenant.checker import check as check_covenants  # noqa: E402
from services.core.covenant.compiler import compile_policy  # noqa: E402
from services.core.covenant.keyring import Keyring  # noqa: E402
from services.core.covenant.loader import load_files  # noqa: E402
from services.core.merkle import leaf_hash  # noqa: E402
from services.core.pipeline import process  # noqa: E402
from services.core.policy import Policy  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.core.regions import ReferenceData  # noqa: E402
from services.core.schema_registry import SchemaRegistry, default_schema_dir  # noqa: E402
from services.core.signing import canonical_envelope, parse_signature, verify_envelope  # noqa: E402
from services.core.verified_roots import VerifiedRoots  # noqa: E402
from services.demo import generate  # noqa: E402
from services.demo.keys import demo_key_id, demo_private_key  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402

BENCH_QUICK_ARGS = ["--signals", "1000"]  # make bench-quick (see bench/run.py)
BENCH_ARGS = ["--signals", "5000"]  # make bench


def best_of(runs: int, fn: object) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(runs):
        gc.collect()
        started = time.process_time()  # CPU time: other work on the machine does not count
        fn()
        best = min(best, time.process_time() - started)
    return best


def batches(traffic: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """The traffic signed in batches of ``size`` per source partner (demo TEST keys), in the
    traffic's order; the number of batches is ``len(set(signature))``."""
    plain = [{k: v for k, v in s.items() if k != "signature"} for s in traffic]
    by_source: dict[str, list[int]] = {}
    for index, envelope in enumerate(plain):
        by_source.setdefault(str(envelope["source"]), []).append(index)
    signed: list[dict[str, Any]] = [{} for _ in plain]
    for source, indexes in by_source.items():
        key, key_id = demo_private_key(source), demo_key_id(source)
        for start in range(0, len(indexes), size):
            chunk = indexes[start : start + size]
            for index, envelope in zip(
                chunk, sign_batch([plain[i] for i in chunk], key, key_id), strict=True
            ):
                signed[index] = envelope
    return signed


def main() -> None:  # noqa: PLR0915 - one measurement script, read top to bottom
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=512, help="signals per signed batch")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", action="store_true", help="print one JSON line for make bench")
    args = parser.parse_args()

    registry = SchemaRegistry.load(default_schema_dir())
    checked = check_covenants(
        load_files([ROOT / "covenants"], demo=True),
        registry,
        ReferenceData.load(),
        today=date(2026, 11, 22),
    )
    if not checked.ok:
        raise Refused(f"covenants/ do not check: {[str(p) for p in checked.errors]}")
    signed_policy = compile_policy(checked, registry, Pseudonymiser(MemoryKeyStore.for_tests()))
    keyring = signed_policy.keyring
    if keyring is None:
        raise Refused("the shipped covenants register no partner keys: nothing would be verified")
    unsigned_policy = dataclasses.replace(signed_policy, keyring=Keyring(()))
    traffic = generate(args.signals, seed=7, start=datetime(2026, 9, 1, tzinfo=UTC)).signals
    batched = batches(traffic, args.batch)
    roots = len({s["signature"] for s in batched})
    signed = [orjson.dumps(s) for s in traffic]
    in_batches = [orjson.dumps(s) for s in batched]
    unsigned = [orjson.dumps({k: v for k, v in s.items() if k != "signature"}) for s in traffic]
    now = datetime(2026, 11, 22, 12, tzinfo=UTC)
    day = now.date()
    keys = {s["source"]: demo_private_key(s["source"]).public_key() for s in traffic}
    bare = [
        (keys[s["source"]], parse_signature(s["signature"])[1], canonical_envelope(s))
        for s in traffic
    ]
    paths = [(parse_batch(s["batch"]), leaf_hash(canonical_envelope(s))) for s in batched]

    def fresh_roots() -> None:
        keyring.roots = VerifiedRoots()  # every run pays one verification per batch

    sources = [str(s["source"]) for s in traffic]
    batch_sources = [str(s["source"]) for s in batched]
    variants: dict[str, tuple[list[bytes], Policy, str | None]] = {
        "single": (signed, signed_policy, "ed25519"),
        "batches": (in_batches, signed_policy, "ed25519-merkle"),
        "unsigned": (unsigned, unsigned_policy, None),
    }
    fresh_roots()
    expected = {
        "single": expect(zip(sources, signed, strict=True), registry, signed_policy, now).counts,
        "batches": expect(
            zip(batch_sources, in_batches, strict=True), registry, signed_policy, now
        ).counts,
        "unsigned": expect(
            zip(sources, unsigned, strict=True), registry, unsigned_policy, now
        ).counts,
    }
    done: dict[str, list[Counts]] = {name: [] for name in variants}
    wrong_form: dict[str, int] = dict.fromkeys(variants, 0)
    root_verifications: list[int] = []

    def run(name: str) -> None:
        lines, policy, form = variants[name]
        records = deliveries = rejected = mismatched = 0
        for raw in lines:
            outcome = process(raw, registry, policy, now)
            rejected += outcome.rejection is not None
            records += len(outcome.decisions) + (outcome.rejection is not None)
            deliveries += sum(d.delivered for d in outcome.decisions)
            proof = outcome.partner_signature
            mismatched += (proof["form"] if proof else None) != form
        done[name].append(Counts(len(lines), deliveries, records, rejected))
        wrong_form[name] += mismatched

    def hub() -> None:
        run("single")

    def hub_batches() -> None:
        fresh_roots()
        run("batches")
        root_verifications.append(keyring.roots.verifications)

    def baseline() -> None:
        run("unsigned")

    failed_checks: dict[str, int] = {"single": 0, "batches": 0, "paths": 0}

    def check_single() -> None:
        failed_checks["single"] += sum(
            verify_envelope(envelope, keyring, day) is None for envelope in traffic
        )

    def check_batches() -> None:
        fresh_roots()
        failed_checks["batches"] += sum(
            verify_envelope(envelope, keyring, day) is None for envelope in batched
        )
        root_verifications.append(keyring.roots.verifications)

    def ed25519_only() -> None:
        for public, signature, message in bare:
            public.verify(signature, message)  # raises InvalidSignature: no figure at all

    def paths_only() -> None:
        failed_checks["paths"] += sum(not proof.leads_to_root(leaf) for proof, leaf in paths)

    for warm in (hub, hub_batches, baseline):  # caches (pseudonym keys, per-day indexes)
        warm()
    runs = args.runs
    hub_rate = len(signed) / best_of(runs, hub)
    batch_rate = len(in_batches) / best_of(runs, hub_batches)
    base_rate = len(unsigned) / best_of(runs, baseline)
    single_us = best_of(runs, check_single) / len(traffic) * 1e6
    batch_us = best_of(runs, check_batches) / len(batched) * 1e6
    verify_us = best_of(runs, ed25519_only) / len(bare) * 1e6
    path_us = best_of(runs, paths_only) / len(paths) * 1e6
    for name, found in done.items():
        for counts in found:  # the warm-up run and every timed run
            check(f"{name} signals", expected[name], counts)
        if wrong_form[name]:
            raise Refused(
                f"{name} signals: {wrong_form[name]:,} outcomes do not carry the proof of a "
                f"{variants[name][2] or 'unsigned'} signal"
            )
    if any(n != roots for n in root_verifications):
        raise Refused(
            f"batch roots: verified {sorted(set(root_verifications))} times per run, expected "
            f"{roots:,} (each batch root once)"
        )
    if any(failed_checks.values()):
        raise Refused(f"signature checks timed alone failed: {failed_checks}")
    extra = {
        "batches": roots,
        "batch_size": args.batch,
        "root_verifications_per_run": roots,
        "runs_checked": len(done["single"]),
    }
    rows = [
        {
            "name": "signature verification (core path, signed vs unsigned)",
            "hub": round(hub_rate),
            "baseline": round(base_rate),
            "unit": "signals/s",
            "ratio": round(hub_rate / base_rate, 4),
            "target": "- (cost of signing; core and router targets include it)",
            "pass": None,
            "verify_us": round(verify_us, 1),
            "checked": expected["single"].as_json() | {"runs_checked": len(done["single"])},
        },
        {
            "name": f"signature verification (core path, signed batches of {args.batch} vs unsigned)",
            "hub": round(batch_rate),
            "baseline": round(base_rate),
            "unit": "signals/s",
            "ratio": round(batch_rate / base_rate, 4),
            "target": "- (cost of signing in batches)",
            "pass": None,
            "checked": expected["batches"].as_json() | extra,
        },
        {
            "name": f"signature check per signal (batches of {args.batch} vs single signatures)",
            "hub": round(1e6 / batch_us),
            "baseline": round(1e6 / single_us),
            "unit": "signals/s",
            "ratio": round(single_us / batch_us, 2),
            "target": "-",
            "pass": None,
            "checked": {"signals": len(traffic), "verified_per_run": len(traffic)} | extra,
            "us_per_signal": {"single": round(single_us, 1), "batch": round(batch_us, 1)},
        },
    ]
    if args.json:
        for row in rows:
            print(orjson.dumps(row).decode())
        return
    print(
        f"signals: {len(signed):,} in {roots} signed batches of up to {args.batch} "
        f"(mean {len(batched) / roots:.0f})  "
        f"cores: {os.cpu_count()} (one used)"
    )
    print(
        f"hub (process, single signatures):  {hub_rate:>9,.0f} signals/s  ({1e6 / hub_rate:.1f} µs)"
    )
    print(
        f"hub (process, signed batches):     {batch_rate:>9,.0f} signals/s  ({1e6 / batch_rate:.1f} µs)"
    )
    print(
        f"baseline (process, unsigned):      {base_rate:>9,.0f} signals/s  ({1e6 / base_rate:.1f} µs)"
    )
    print(
        f"signature check per signal, single:  {single_us:.1f} µs  (bare Ed25519 verify {verify_us:.1f} µs)"
    )
    print(
        f"signature check per signal, batch:   {batch_us:.1f} µs  (bare path check {path_us:.1f} µs; "
        f"one root verification per {len(batched) / roots:.0f} signals)"
    )
    print(
        f"ratio hub/baseline: single {hub_rate / base_rate:.3f} "
        f"(+{1e6 / hub_rate - 1e6 / base_rate:.1f} µs/signal), batches {batch_rate / base_rate:.3f} "
        f"(+{1e6 / batch_rate - 1e6 / base_rate:.1f} µs/signal)"
    )


if __name__ == "__main__":
    refusing(main)
