"""The RIEC analyst's alert queue: ms per page with 100,000 alerts and signals in the workplace
and 1,000,000 records in the audit log, in SQLite.

Hub figure: one ``GET /riec`` through the whole web app (FastAPI test client): session and
role check, the scoped queue query, rendering the page of 50 items and writing its access-log
row — for three views: the newest items, new stacked-location alerts only, and a municipality
with a minimum score. Baseline, same run and database: the plain indexed ``SELECT`` of the same
50 rows (recipient and order only) on a raw connection — the least any SQL-backed queue pays.
Target: <= 300 ms per page (p95).

Before printing a figure the bench checks that every timed page holds exactly the 50 items the
generator made newest for that view (computed from the formula that made them, not from the
database), in order, and none of another RIEC; a wrong page exits with status 1 and no figure.

    .venv/bin/python bench/riec.py [--items 100000] [--records 1000000] [--runs 30] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from services.audit.bulk import bulk_writer, record_rows, subject_rows  # noqa: E402
from services.audit.rows import audit_row  # noqa: E402
from services.audit.store import SqlAuditStore  # noqa: E402
from services.config import Paths  # noqa: E402
from services.core.regions import ReferenceData  # noqa: E402
from services.core.schema_registry import SchemaRegistry  # noqa: E402
from services.database.engine import WRITE_TRANSACTION, make_engine  # noqa: E402
from services.database.tables.riec import riec_items  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402
from services.riec.cases import CaseFiles  # noqa: E402
from services.riec.scope import regions  # noqa: E402
from services.riec.workplace import PAGE, Workplace  # noqa: E402
from services.web.app import create_web_app  # noqa: E402
from services.web.context import WebSettings  # noqa: E402
from services.web.users import UserStore  # noqa: E402

TARGET_MS = 300.0
BENCH_QUICK_ARGS = ["--items", "5000", "--records", "20000", "--runs", "5"]
BENCH_ARGS: list[str] = []
NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
RIEC, OTHER = "riec-nh", "riec-amsterdam"
COVENANT = "drugslocaties-nh"
ALERT = "hub.stacked_location_alert.v1"
TYPES = (
    "energy.consumption_anomaly.v1",
    "housing.observation.v1",
    "water.abnormal_use.v1",
    "residents.anonymous_tip.v1",
    "waste.drug_waste_dumping.v1",
)
STATES = ("new", "new", "new", "new", "new", "new", "new", "assessing", "case", "dismissed")
TOWNS = ("GM0361", "GM0479", "GM0392", "GM0373", "GM0383", "GM0400", "GM0405", "GM0420")
PASSWORD = "correct horse battery"  # noqa: S105 - a throw-away user of a temporary database
BATCH = 2000


# -- the generator: item n, everything about it from n alone ------------------------------


def recipient(n: int) -> str:
    return OTHER if n % 10 == 9 else RIEC


def signal_type(n: int) -> str:
    return ALERT if n % 20 == 3 else TYPES[n % len(TYPES)]


def state(n: int) -> str:
    return STATES[(n // 7) % len(STATES)]


def town(n: int) -> str:
    return TOWNS[(n // 3) % len(TOWNS)]


def score(n: int) -> float:
    return round(0.5 + (n * 37 % 50) / 100, 2)


def received(n: int) -> datetime:
    """Item 0 is the newest; one feed day holds about 550 items (times are days)."""
    return (NOW - timedelta(minutes=n * 2.6)).replace(hour=0, minute=0, second=0, microsecond=0)


def item_id(n: int) -> str:
    return f"bench-item-{n:07d}"


def row(n: int) -> dict[str, Any]:
    kind = signal_type(n)
    data = {
        "address": f"r1.bench{n:07d}AddressPseudonymOfTheRecipient0000",
        "municipality": town(n),
        "score": score(n),
    }
    message = {
        "exchange_id": item_id(n), "type": kind, "source": "schakel" if kind == ALERT else "liander",
        "time": received(n).date().isoformat(),
        "covenant": {"id": COVENANT, "version": "2025.1", "rule": "bench-rule",
                     "article": "art. 4", "purpose": "signalering"},
        "data": data, "retention_days": 365, "reidentify": True,
    }  # fmt: skip
    return {
        "id": item_id(n), "recipient": recipient(n), "covenant_id": COVENANT,
        "rule_id": "bench-rule", "signal_type": kind, "received_at": received(n),
        "municipality": town(n), "score": score(n),
        "steps": "cannabis.fit_out cannabis.cultivate" if kind == ALERT else "cannabis.cultivate",
        "alert": int(kind == ALERT), "message": orjson.dumps(message).decode(),
        "pseudonyms": data["address"], "locations": "", "keep_until": NOW + timedelta(days=365),
        "state": state(n), "holder": None, "case_id": None, "reason": None,
    }  # fmt: skip


VIEWS: dict[str, tuple[str, Callable[[int], bool]]] = {
    "newest": ("/riec", lambda n: True),
    "new alerts": (
        f"/riec?state=new&type={ALERT}",
        lambda n: state(n) == "new" and signal_type(n) == ALERT,
    ),
    "one town, score >= 0.9": (
        "/riec?municipality=GM0361&min_score=0.9",
        lambda n: town(n) == "GM0361" and score(n) >= 0.9,
    ),
}


def expected(items: int, wanted: Callable[[int], bool]) -> list[str]:
    """The ids a view shows first: newest first, ties by id descending (the page's order)."""
    chosen = [n for n in range(items) if recipient(n) == RIEC and wanted(n)]
    chosen.sort(key=lambda n: (received(n), item_id(n)), reverse=True)
    return [item_id(n) for n in chosen[:PAGE]]


# -- filling the database -----------------------------------------------------------------


def audit_batches(count: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, count, BATCH):
        yield [
            {
                "record_id": f"bench-{n:09d}",
                "timestamp": (NOW - timedelta(seconds=count - n)).isoformat(),
                "action": "disclose", "result": "delivered",
                "object": TYPES[n % len(TYPES)], "signal_id": f"liander-{n:09d}",
                "origin": "liander", "recipient": RIEC,
                "covenant": {"id": COVENANT, "rule": "bench-rule"},
                "subjects": {"address": f"S-adr-{n // 10}"},
            }
            for n in range(start, min(start + BATCH, count))
        ]  # fmt: skip


def fill(url: str, items: int, records: int) -> Engine:
    SqlAuditStore.open(url).close()  # the schema (every migration, 0010 included)
    engine = make_engine(url)
    writer = bulk_writer(engine.dialect, url)
    seq = 0
    for batch in audit_batches(records):
        rows = [audit_row(record) for record in batch]
        first, seq = seq + 1, seq + len(rows)
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_TRANSACTION: True})
            with connection.begin(), writer.cursor(connection) as cursor:
                writer.insert_records(cursor, record_rows(rows, first, repeat(b""), writer))
                writer.insert_subjects(cursor, subject_rows(rows, first))
    for start in range(0, items, BATCH):
        with engine.begin() as connection:
            connection.execute(
                riec_items.insert(), [row(n) for n in range(start, min(start + BATCH, items))]
            )
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return engine


def app(engine: Engine) -> TestClient:
    paths = Paths.from_env({})
    registry = SchemaRegistry.load(paths.schemas)
    reference = ReferenceData.load(paths.reference)
    from services.config import load_policy  # noqa: PLC0415
    from services.core.pseudonyms import Pseudonymiser  # noqa: PLC0415

    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()), today=NOW.date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    workplace = Workplace(
        engine, SqlAuditStore(engine), registry, regions(loaded.policy.covenants, reference),
        clock=lambda: NOW,
    )  # fmt: skip
    users = UserStore(engine, kdf_cost=8)
    users.create_schema()
    users.add("ana", PASSWORD, "riec-analyst", covenants=[COVENANT], partners=[RIEC])
    web = create_web_app(
        engine, MemoryKeyStore.for_tests(), WebSettings(secret=b"b" * 32, kdf_cost=8),
        riec=CaseFiles(workplace),
    )  # fmt: skip
    client = TestClient(web, follow_redirects=False)
    form = client.get("/sign-in")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    signed = client.post("/sign-in", data={"name": "ana", "password": PASSWORD, "csrf": token})
    assert signed.status_code == 303, signed.text
    return client


def shown(html: str) -> list[str]:
    return [part.split('"', 1)[0] for part in html.split('href="/riec/items/')[1:]]


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    result = None
    for _ in range(3):  # warm the caches first
        result = fn()
    spent = []
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        spent.append((time.perf_counter() - started) * 1000)
    return spent, result


def baseline(engine: Engine) -> Callable[[], list[str]]:
    statement = text(
        "SELECT * FROM riec_items WHERE recipient = :r ORDER BY received_at DESC, id DESC LIMIT :n"
    )

    def query() -> list[str]:
        with engine.connect() as connection:
            return [r.id for r in connection.execute(statement, {"r": RIEC, "n": PAGE})]

    return query


def p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="schakel-bench-riec-") as folder:
        started = time.perf_counter()
        engine = fill(f"sqlite:///{Path(folder) / 'hub.db'}", args.items, args.records)
        fill_s = time.perf_counter() - started
        client = app(engine)
        figures: dict[str, list[float]] = {}
        wrong: list[str] = []
        for name, (path, wanted) in VIEWS.items():
            spent, page = timed(lambda p=path: client.get(p), args.runs)
            want = expected(args.items, wanted)
            if not want or page.status_code != 200 or shown(page.text) != want:
                wrong.append(f"{name}: {page.status_code}, {shown(page.text)[:3]}")
            if any(f'bench-item-{n:07d}"' in page.text for n in range(9, 200, 10)):
                wrong.append(f"{name}: shows an item of {OTHER}")
            figures[name] = spent
        base_ms, ids = timed(baseline(engine), args.runs)
        if ids != expected(args.items, lambda n: True):
            wrong.append("baseline: not the newest page")
        with engine.connect() as connection:
            counts = {
                t: connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one()  # noqa: S608 - fixed names
                for t in ("riec_items", "audit_records")
            }
        engine.dispose()
    if wrong or counts != {"riec_items": args.items, "audit_records": args.records}:
        print(f"the queue showed wrong pages: {wrong[:3]} {counts}", file=sys.stderr)
        raise SystemExit(1)
    base = statistics.median(base_ms)
    results = []
    for name, spent in figures.items():
        hub = statistics.median(spent)
        results.append(
            {
                "name": f"alert queue, {name} ({args.items:,} items, {args.records:,} audit "
                "records; median per page)",
                "hub": round(hub, 2),
                "baseline": round(base, 3),
                "unit": "ms/page",
                "ratio": round(hub / base, 1),
                "target": f"<= {TARGET_MS:.0f} ms per page (p95)",
                "pass": p95(spent) <= TARGET_MS,
                "p95_ms": round(p95(spent), 2),
            }
        )
    if args.json:
        print(orjson.dumps(results).decode())
        return
    print(
        f"alert queue: {args.items:,} items and {args.records:,} audit records (filled in "
        f"{fill_s:.0f} s); {args.runs} pages per view, every page checked"
    )
    for result in results:
        verdict = "pass" if result["pass"] else "FAIL"
        print(
            f"  {result['name'].split(' (')[0]:<38} median {result['hub']:7.2f} ms, "
            f"p95 {result['p95_ms']:7.2f} ms  {verdict}"
        )
    print(f"  baseline (indexed SELECT of the page)  median {base:7.3f} ms")
    print(f"  target   <= {TARGET_MS:.0f} ms per page (p95)")


if __name__ == "__main__":
    main()
