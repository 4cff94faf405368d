"""Router throughput with 1 and 2 worker processes in one consumer group (the scaling target).

Each measurement starts a fresh embedded broker, the hub's topics (4 partitions per signals
topic), an empty audit database and N real router worker processes (``python -m services.cli
router``, as ``schakel up --workers N`` starts them), waits until every worker is ready and
owns its share of the partitions (read from the workers' own /metrics and /readyz), then
publishes the workload of bench/workload.py (signed demo signals fanned out to 3 recipients by
bench/covenants) and times from the first decision (the earliest decision time among the audit
records: when the first batch began) until the last audit record is stored.

The work is checked before a figure is printed (bench/verify.py): the workload, decided
offline, must be accepted in full, and afterwards the audit records (rows in the store), the
feed messages (by exchange id) and the dead letters (read back from the broker) must equal
what it implies; otherwise the script exits 3 (REFUSED). The 2026-11 figures (2 workers 2.08x)
came from a workload whose every signature was broken, so they timed the rejection path.

The workers run the audit path the hub picks for the broker (``--audit-path hub``, the
default: ``transactional`` on noida, ``audit-first`` on Tansu, set as ``SCHAKEL_AUDIT_PATH``) with
one audit indexer process beside them (``python -m services.cli indexer``, as ``schakel up``
starts it), or ``--audit-path sql`` (the workers write the store themselves). Either way the run
ends at the last audit record stored: on a log-first path, once the indexer has written it. The
indexer's CPU per signal is reported apart (from its own /metrics) and in the total.

Baseline = one worker, measured in the same run; ratio = N-worker rate / one-worker rate.
Target (issue 12): 2 workers >= 1.8 x one worker on a quiet 2-core machine. CPU µs per signal
is the workers' ``process_cpu_seconds_total`` over the run, divided by the signals.

    .venv/bin/python bench/scale.py [--signals 12000] [--workers 1,2] [--broker tansu|noida]
                                    [--audit-path hub] [--postgres] [--repeat N] [--json]

With ``--repeat N`` the counts are measured N times, interleaved, and the best run of each
counts (a shared machine only ever makes a run slower).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import audit_rows, exchange_ids, first_decision, read_topics  # noqa: E402
from bench.verify import Counts, Expectation, Refused, check, check_exchanges, refusing  # noqa: E402
from bench.workload import RECIPIENTS, expectation, publish, workload  # noqa: E402
from services.audit.store import SqlAuditStore  # noqa: E402
from services.broker.factory import make_broker  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402
from services.broker.topics import KafkaTopicAdmin  # noqa: E402
from services.config import Paths, load_policy  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.database.engine import make_engine  # noqa: E402
from services.hub.workers import WorkerPool  # noqa: E402
from services.keys.file_store import FileKeyStore  # noqa: E402
from services.router.loop import AUDIT_PATHS, AuditPath  # noqa: E402
from services.router.topics import DEAD_LETTER, SIGNALS_PREFIX, TopicLayout, feed_topic  # noqa: E402
from services.router.worker import AUDIT_PATH_ENV, audit_path_for_broker  # noqa: E402
from tests.postgres_fixtures import free_port  # noqa: E402

BENCH_QUICK_ARGS = ["--signals", "1500"]
BENCH_ARGS = ["--signals", "12000", "--repeat", "2"]
COVENANTS = ROOT / "bench" / "covenants"
TARGET_RATIO = 1.8
HUB_PATH = "hub"
READY_TIMEOUT_S = 180.0
DONE_TIMEOUT_S = 600.0


def scrape(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name] = found.get(sample.name, 0.0) + sample.value
    return found


def usage(urls: list[str]) -> tuple[float, float]:
    """CPU seconds and seconds spent in audit transactions, summed over the workers."""
    seen = [scrape(u) for u in urls]
    return (
        sum(m.get("process_cpu_seconds_total", 0.0) for m in seen),
        sum(m.get("schakel_audit_write_seconds_sum", 0.0) for m in seen),
    )


def ready(urls: list[str], partitions: int) -> bool:
    try:
        if any(httpx.get(f"{u}/readyz", timeout=5).status_code != 200 for u in urls):
            return False
        owned = [scrape(u)["schakel_consumer_assigned_partitions"] for u in urls]
    except httpx.HTTPError:
        return False
    return all(owned) and sum(owned) == partitions


def answers(urls: list[str]) -> bool:
    """Whether every process at ``urls`` serves its metrics (the indexer is up)."""
    try:
        return all(httpx.get(f"{u}/metrics", timeout=5).status_code == 200 for u in urls)
    except httpx.HTTPError:
        return False


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise Refused(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def databases(use_postgres: bool) -> Iterator[Callable[[Path], str]]:
    """A function giving a fresh, empty audit database URL per measurement."""
    if not use_postgres:
        yield lambda tmp: f"sqlite:///{tmp / 'audit.db'}"
        return
    from tests.postgres_fixtures import Databases, PostgresServer, postgres_bin_dir  # noqa: PLC0415

    server = PostgresServer(postgres_bin_dir())
    server.start()
    made = Databases(server)
    try:
        yield lambda _tmp: server.url(made.take())
    finally:
        made.close()
        server.stop()


@dataclass(frozen=True)
class Run:
    rate: float
    """Signals per second routed."""
    cores: float
    """Cores the workers kept busy (below the worker count when other programs took the CPU)."""
    cpu_us: float
    """The workers' CPU µs per signal."""
    checked: Counts
    path: AuditPath = "sql"
    indexer_cpu_us: float = 0.0
    """The audit indexer's CPU µs per signal (log-first paths; 0 on ``sql``)."""


async def count_work(
    settings: KafkaSettings, url: str, expected: Expectation, signals: int
) -> Counts:
    """Feed messages and dead letters read back from the broker, audit records counted in the
    store; refuses unless they are what the workload implies."""
    feeds = await read_topics(
        settings, [feed_topic(r) for r in RECIPIENTS], expected=expected.counts.deliveries
    )
    ids = exchange_ids(feeds)
    check_exchanges("router workers", expected.exchange_ids, ids)
    dead = await read_topics(settings, [DEAD_LETTER], expected=expected.counts.dead_letters)
    found = Counts(
        signals=signals, deliveries=len(ids), audit_records=audit_rows(url), dead_letters=len(dead)
    )
    return check("router workers", expected.counts, found)


def hub_topics(keys: Path) -> dict[str, int]:
    """The hub's topics and their partitions for the benchmark covenants."""
    load = load_policy(
        [COVENANTS],
        Paths.from_env({}).schemas,
        Paths.from_env({}).reference,
        Pseudonymiser(FileKeyStore.open(keys)),
        today=datetime.now(UTC).date(),
        demo=True,
    )
    assert load.policy is not None
    return TopicLayout().spec(load.policy.suppliers, load.policy.recipients)


def start_workers(
    workers: int, env: dict[str, str], tmp: Path, pools: list[WorkerPool]
) -> list[str]:
    """``workers`` router worker processes (added to ``pools``); their metrics URLs."""
    urls = []
    for index in range(workers):
        port = free_port()
        pool = WorkerPool(
            1,
            env | {"SCHAKEL_METRICS_PORT": str(port)},
            tmp / "logs" / str(index),
            extra_args=("--instance", f"bench-{index}", "--batch", "500"),
        )
        pool.start()
        pools.append(pool)
        urls.append(f"http://127.0.0.1:{port}")
    return urls


def start_indexer(env: dict[str, str], tmp: Path, pools: list[WorkerPool]) -> list[str]:
    """The audit indexer process (``schakel indexer``, added to ``pools``); its metrics URL."""
    port = free_port()
    pool = WorkerPool(
        1,
        env | {"SCHAKEL_METRICS_PORT": str(port)},
        tmp / "logs" / "indexer",
        name="indexer",
        command=("indexer",),
    )
    pool.start()
    pools.append(pool)
    return [f"http://127.0.0.1:{port}"]


def resolve_path(requested: str, supports_transactions: bool) -> AuditPath:
    if requested == HUB_PATH:
        return audit_path_for_broker(supports_transactions)
    for path in AUDIT_PATHS:
        if requested == path:
            return path
    raise Refused(f"unknown audit path {requested!r}; use {HUB_PATH} or one of {AUDIT_PATHS}")


def measure(
    workers: int,
    signals: int,
    broker_kind: str,
    url_for: Callable[[Path], str],
    audit_path: str = HUB_PATH,
) -> Run:
    """``workers`` worker processes routing the workload of ``signals`` signals (and the audit
    indexer beside them on a log-first path)."""
    with tempfile.TemporaryDirectory(prefix="schakel-scale-") as name:
        tmp = Path(name)
        broker = make_broker(broker_kind, tmp / "broker")  # type: ignore[arg-type]
        broker.start()
        pools: list[WorkerPool] = []
        path = resolve_path(audit_path, broker.supports_transactions)
        try:
            settings = KafkaSettings.local(broker.bootstrap)
            keys = tmp / "keys.json"
            FileKeyStore.create(keys)
            url = url_for(tmp)
            SqlAuditStore.open(url).close()
            spec = hub_topics(keys)
            with KafkaTopicAdmin(settings) as admin:
                admin.ensure_topics(spec)
            partitions = sum(n for t, n in spec.items() if t.startswith(SIGNALS_PREFIX)) - 1
            env = {
                "SCHAKEL_KAFKA_BOOTSTRAP": settings.bootstrap,
                "SCHAKEL_DATABASE_URL": url,
                "SCHAKEL_KEYS": str(keys),
                "SCHAKEL_STATE_DIR": str(tmp / "state"),
                "SCHAKEL_COVENANTS": str(COVENANTS),
                "SCHAKEL_DEMO": "1",  # the demo traffic is signed with TEST keys
                # as schakel up sets it (unset, a worker takes the transactional path, which
                # Tansu cannot run)
                AUDIT_PATH_ENV: path,
            }
            # on a log-first path the indexer writes the rows the run waits for
            indexer_urls = start_indexer(env, tmp, pools) if path != "sql" else []
            urls = start_workers(workers, env, tmp, pools)
            wait(lambda: ready(urls, partitions), READY_TIMEOUT_S, "every worker ready")
            wait(lambda: answers(indexer_urls), READY_TIMEOUT_S, "the audit indexer")
            traffic = workload(signals, seed=5)
            # refuses a workload the router would reject; the workers' keys key the exchange ids
            expected = expectation(traffic, keys=FileKeyStore.open(keys))
            before = usage(urls)
            indexer_before = usage(indexer_urls)[0]
            asyncio.run(publish(settings, traffic))
            records = expected.counts.audit_records or 0
            counting = SqlAuditStore(make_engine(url))  # one connection pool while polling
            try:
                wait(lambda: counting.count() >= records, DONE_TIMEOUT_S, f"{records} records")
            finally:
                counting.close()
            finished = datetime.now(UTC)
            began = first_decision(url)
            if began is None:
                raise Refused("no decision time in the audit store")
            elapsed = (finished - began).total_seconds()
            after = usage(urls)
            indexer_cpu = usage(indexer_urls)[0] - indexer_before
            cpu, write = (a - b for a, b in zip(after, before, strict=True))
            checked = asyncio.run(count_work(settings, url, expected, signals))
            print(
                f"{workers} worker(s), {path}: {signals / elapsed:,.0f} signals/s over "
                f"{elapsed:.1f} s; workers busy {cpu / elapsed:.2f} cores, "
                f"{cpu / signals * 1e6:,.0f} CPU µs per signal; audit writes "
                f"{write / elapsed:.2f} worker-seconds per second"
                + (
                    f"; indexer {indexer_cpu / signals * 1e6:,.0f} CPU µs per signal"
                    if indexer_urls
                    else ""
                ),
                file=sys.stderr,
            )
            return Run(
                signals / elapsed,
                cpu / elapsed,
                cpu / signals * 1e6,
                checked,
                path,
                indexer_cpu / signals * 1e6,
            )
        finally:
            for pool in pools:
                pool.stop(timeout=15)
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=12_000)
    parser.add_argument("--workers", default="1,2", help="worker counts, the first is the baseline")
    parser.add_argument("--broker", choices=["tansu", "noida"], default="tansu")
    parser.add_argument(
        "--audit-path",
        choices=(HUB_PATH, *AUDIT_PATHS),
        default=HUB_PATH,
        help="the workers' audit path; hub (default): as schakel up picks it per broker, with "
        "the audit indexer running; sql: the workers write the store themselves",
    )
    parser.add_argument("--postgres", action="store_true", help="audit on a throwaway PostgreSQL")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measure each count N times, keep the best"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    runs: dict[int, list[Run]] = {n: [] for n in counts}
    with databases(args.postgres) as url_for:
        for _ in range(args.repeat):  # interleaved, so a noisy minute hits every count alike
            for n, found in runs.items():
                found.append(measure(n, args.signals, args.broker, url_for, args.audit_path))
    best = {n: max(found, key=lambda r: r.rate) for n, found in runs.items()}
    base = best[counts[0]].rate
    database = "postgresql" if args.postgres else "sqlite"
    results: list[dict[str, Any]] = [
        {
            "name": f"router scaling ({args.broker}, {best[n].path} audit, {database}), "
            f"{n} worker(s)",
            "audit_path": best[n].path,
            "hub": round(rate),
            "baseline": round(base),
            "unit": "signals/s",
            "ratio": round(rate / base, 3),
            "target": f">= {TARGET_RATIO} x one worker with 2 workers",
            "pass": rate / base >= TARGET_RATIO if n == 2 else None,
            "runs": [round(r.rate) for r in runs[n]],
            "cores_busy": round(best[n].cores, 2),
            "per_busy_core": round(rate / max(best[n].cores, 0.01)),
            "hub_cpu_us": round(best[n].cpu_us, 1),
            "indexer_cpu_us": round(best[n].indexer_cpu_us, 1),
            "checked": best[n].checked.as_json(),
        }
        for n, rate in ((n, r.rate) for n, r in best.items())
    ]
    if args.json:
        print(orjson.dumps(results).decode())
        return
    print(
        f"signals: {args.signals:,}  broker: {args.broker}  audit: {database}  cores: {os.cpu_count()}"
    )
    for row in results:
        print(
            f"{row['name']}: {row['hub']:>7,} signals/s   ratio {row['ratio']}"
            f"   (runs: {', '.join(f'{r:,}' for r in row['runs'])}; best kept "
            f"{row['cores_busy']} cores busy, {row['per_busy_core']:,} signals/s per busy core, "
            f"{row['hub_cpu_us']:,} CPU µs per signal)\n  checked: {row['checked']}"
        )
    two = next((r for r in results if r["pass"] is not None), None)
    if two is not None:
        print(f"target 2 workers >= {TARGET_RATIO} x one: {'PASS' if two['pass'] else 'FAIL'}")


if __name__ == "__main__":
    refusing(main)
