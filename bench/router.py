"""Router throughput and latency on an embedded broker, next to an equally tuned raw aiokafka
passthrough doing the same fan-out (bench/sides.py has both sides).

Workload (bench/workload.py): signed demo signals (energy, water, housing, tips), each fanned
out to 3 recipients by bench/covenants/fanout.yaml; decided offline first, and refused unless
every signal is accepted (bench/verify.py).

For each broker, every phase on a fresh broker and an empty SQLite audit file, each side in a
child process of its own (nothing else in that process). The router runs on the audit path the
hub uses on that broker (``--audit-path hub``: ``transactional`` on noida, ``audit-first`` on
Tansu; ``--audit-path sql`` for the old path), and on a log-first path the audit indexer runs
beside it in a third process, as ``schakel up`` runs it; audit records count only once the
indexer has written them to the store:

* throughput: the workload is published first, then the side consumes it; timed from the
  start of its first batch to the end of its last, wall clock and the side's CPU time;
* latency: the side waits for signals published at a steady ``--rate`` for ``--seconds``;
  publish→feed latency per message of one recipient's feed, read ``read_committed`` by a
  child process (p50/p99);
* the indexer (log-first paths): its own throughput (records per second of its indexing
  steps) and CPU per signal, how long it took after the router's last batch to index the topic
  to its end (drain), and per audit message the time from produced to in SQL (lag p50/p99).

After each phase the work is counted independently: feed messages (by exchange id) and dead
letters read back from the broker, audit records as rows in the store; a figure is printed only
if they equal what the workload implies, otherwise the script exits 3 (REFUSED). Ratio = router
/ passthrough, both measured in the same run. The broker's own CPU time is reported beside.

    .venv/bin/python bench/router.py [--signals 20000] [--broker tansu,noida] [--rate 1000]
                                     [--seconds 20] [--repeat 1] [--audit-path hub]
                                     [--signed-batch 0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import audit_rows, exchange_ids, process_cpu_s, read_topics  # noqa: E402
from bench.scratch import scratch_broker  # noqa: E402
from bench.sides import JOIN_TIMEOUT_S, index, read_arrivals, serve  # noqa: E402
from bench.verify import Counts, Expectation, Refused, check, check_exchanges, refusing  # noqa: E402
from bench.workload import (  # noqa: E402
    RECIPIENTS,
    Signal,
    expectation,
    feed_exchange_id,
    policy_source,
    publish,
    workload,
)
from services.audit.store import SqlAuditStore  # noqa: E402
from services.broker.embedded import BrokerKind, EmbeddedBroker  # noqa: E402
from services.broker.fetching import FEED_PATH_WAIT_MS  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402
from services.router.loop import AUDIT_PATHS, AuditPath  # noqa: E402
from services.router.topics import DEAD_LETTER, TopicLayout, feed_topic, signals_topic  # noqa: E402
from services.router.worker import audit_path_for_broker  # noqa: E402

TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0
TARGET_INDEX_LAG_P99_MS = 1000.0
HUB_PATH = "hub"
"""``--audit-path`` default: the path ``schakel up`` picks for the broker (:func:`hub_path`)."""
LATENCY_RECIPIENT = "riec-nh"
MIN_RATE_SHARE = 0.9
"""A latency run whose publisher reached less than this share of ``--rate`` is refused."""
BENCH_QUICK_ARGS = ["--signals", "1500", "--seconds", "3", "--rate", "300"]  # see bench/run.py
BENCH_ARGS = [  # make bench
    "--signals",
    "20000",
    "--seconds",
    "20",
    "--broker",
    "tansu,noida",
    "--repeat",
    "2",
]


@dataclass
class Indexed:
    """The audit indexer's run beside the router (log-first paths)."""

    records: int
    new: int
    seconds: float
    cpu_s: float
    drain_s: float
    """From the end of the router's last batch to the topic indexed to its end."""
    lag_ms: list[float]
    """Per audit message: produced → written to SQL."""

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Phase:
    """One side's run: its own figures and the counts checked afterwards."""

    signals: int
    seconds: float
    cpu_s: float
    broker_cpu_s: float
    checked: Counts
    latencies_ms: list[float] = field(default_factory=list)
    published_rate: float = 0.0
    batches: int = 0
    busy_s: float = 0.0
    path: AuditPath = "sql"
    indexed: Indexed | None = None

    @property
    def batch_mean(self) -> float:
        return self.signals / max(self.batches, 1)

    @property
    def batch_ms(self) -> float:
        """Mean wall-clock time of one batch (poll to commit)."""
        return self.busy_s / max(self.batches, 1) * 1000

    @property
    def rate(self) -> float:
        return self.signals / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.signals, 1) * 1e6

    @property
    def broker_cpu_us(self) -> float:
        return self.broker_cpu_s / max(self.signals, 1) * 1e6

    @property
    def indexer_cpu_us(self) -> float:
        cpu = self.indexed.cpu_s if self.indexed is not None else 0.0
        return cpu / max(self.signals, 1) * 1e6


def hub_path(broker: EmbeddedBroker) -> AuditPath:
    """The audit path ``schakel up`` picks (:func:`services.hub.up.audit_path_for`):
    transactional where the broker has transactions, audit-first where it has none."""
    return audit_path_for_broker(broker.supports_transactions)


def resolve_path(requested: str, broker: EmbeddedBroker) -> AuditPath:
    if requested == HUB_PATH:
        return hub_path(broker)
    for path in AUDIT_PATHS:
        if requested == path:
            return path
    raise Refused(f"unknown audit path {requested!r}; use {HUB_PATH} or one of {AUDIT_PATHS}")


@contextmanager
def fresh_broker(kind: BrokerKind) -> Iterator[tuple[EmbeddedBroker, KafkaSettings, Path]]:
    """A new broker with the hub's topics and the passthrough's, and a scratch directory."""
    partners = sorted(policy_source().current.policy.suppliers)
    spec = TopicLayout().spec(partners, RECIPIENTS)
    spec.update({f"base.{r}": 4 for r in RECIPIENTS})
    with scratch_broker(kind, spec) as started:
        yield started


def input_topics() -> list[str]:
    return [signals_topic(p) for p in sorted(policy_source().current.policy.suppliers)]


class Child:
    """One side, or the feed reader, in a child process (spawned: a clean interpreter)."""

    def __init__(self, side: str, target: Callable[..., None], *args: Any) -> None:
        self.side = side
        context = multiprocessing.get_context("spawn")
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=target, args=(*args, theirs), daemon=True)
        self._process.start()

    @classmethod
    def serving(
        cls,
        side: str,
        settings: KafkaSettings,
        db: str,
        expected: int,
        wait_ms: int,
        path: AuditPath,
    ) -> Child:
        topics = input_topics()
        return cls(
            side, serve, side, settings.bootstrap, topics, db, expected, 600.0, wait_ms, path
        )

    @classmethod
    def indexing(cls, side: str, path: AuditPath, settings: KafkaSettings, db: str) -> Child | None:
        """The audit indexer beside the router on a log-first path; else none."""
        if side != "router" or path == "sql":
            return None
        return cls("indexer", index, settings.bootstrap, db, 600.0)

    def tell(self, message: str) -> None:
        self._conn.send(message)

    async def message(self, timeout_s: float) -> dict[str, Any]:
        if not await asyncio.to_thread(self._conn.poll, timeout_s):
            raise Refused(f"the {self.side} side did not answer within {timeout_s:.0f} s")
        try:
            message: dict[str, Any] = self._conn.recv()
        except EOFError:
            self._process.join(5)
            raise Refused(
                f"the {self.side} side exited without a result (exit code {self._process.exitcode})"
            ) from None
        if "error" in message:
            raise Refused(f"the {self.side} side failed: {message['error']}")
        return message

    def close(self) -> None:
        self._process.join(30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


async def drained(indexer: Child | None, done: dict[str, Any]) -> Indexed | None:
    """Tell the indexer the router is done; its run once it indexed the topic to its end."""
    if indexer is None:
        return None
    indexer.tell("router done")
    result = await indexer.message(600)
    if result["refused"]:
        raise Refused(f"the indexer refused {result['refused']:,} audit-topic messages")
    return Indexed(
        records=int(result["signals"]),
        new=int(result["new"]),
        seconds=result["seconds"],
        cpu_s=result["cpu_s"],
        drain_s=max(0.0, result["ended_at"] - done["ended_at"]),
        lag_ms=list(result["lag_ms"]),
    )


async def count_work(
    side: str, settings: KafkaSettings, db: str, handled: int, expected: Expectation, n: int
) -> Counts:
    """Count what ``side`` left on the broker and in the store (not the side's own tally) and
    check it against what the workload of ``n`` signals implies."""
    if side == "passthrough":
        want = Counts(signals=n, deliveries=n * len(RECIPIENTS))
        copies = await read_topics(
            settings, [f"base.{r}" for r in RECIPIENTS], expected=want.deliveries
        )
        return check("passthrough", want, Counts(signals=handled, deliveries=len(copies)))
    feeds = await read_topics(
        settings, [feed_topic(r) for r in RECIPIENTS], expected=expected.counts.deliveries
    )
    ids = exchange_ids(feeds)
    check_exchanges("router", expected.exchange_ids, ids)
    dead = await read_topics(settings, [DEAD_LETTER], expected=expected.counts.dead_letters)
    found = Counts(
        signals=handled, deliveries=len(ids), audit_records=audit_rows(db), dead_letters=len(dead)
    )
    return check("router", expected.counts, found)


async def throughput(
    kind: BrokerKind,
    side: str,
    signals: list[Signal],
    expected: Expectation,
    wait_ms: int = FEED_PATH_WAIT_MS,
    audit_path: str = HUB_PATH,
) -> Phase:
    with fresh_broker(kind) as (broker, settings, tmp):
        db = f"sqlite:///{tmp / 'audit.db'}"
        SqlAuditStore.open(db).close()
        path = resolve_path(audit_path, broker)
        await publish(settings, signals)
        indexer = Child.indexing(side, path, settings, db)
        child = Child.serving(side, settings, db, len(signals), wait_ms, path)
        try:
            if indexer is not None:
                await indexer.message(JOIN_TIMEOUT_S + 30)
            await child.message(JOIN_TIMEOUT_S + 30)
            broker_cpu = process_cpu_s(pid(broker))
            done = await child.message(600)
            broker_cpu = process_cpu_s(pid(broker)) - broker_cpu
            indexed = await drained(indexer, done)
        finally:
            child.close()
            if indexer is not None:
                indexer.close()
        checked = await count_work(side, settings, db, int(done["signals"]), expected, len(signals))
    print(
        f"{kind} {side} ({path if side == 'router' else 'no audit'}) throughput: "
        f"{done['signals'] / max(done['seconds'], 1e-9):,.0f} signals/s, "
        f"CPU {done['cpu_s'] / len(signals) * 1e6:,.0f} µs/signal" + describe(indexed, signals),
        file=sys.stderr,
    )
    return Phase(
        int(done["signals"]),
        done["seconds"],
        done["cpu_s"],
        broker_cpu,
        checked,
        batches=int(done["batches"]),
        busy_s=done["busy_s"],
        path=path,
        indexed=indexed,
    )


def describe(indexed: Indexed | None, signals: list[Signal]) -> str:
    if indexed is None:
        return ""
    return (
        f"; indexer {indexed.rate:,.0f} records/s, CPU "
        f"{indexed.cpu_s / max(len(signals), 1) * 1e6:,.0f} µs/signal, drained "
        f"{indexed.drain_s:.2f} s after the router, lag p99 "
        f"{percentile(indexed.lag_ms, 0.99) if indexed.lag_ms else 0:.0f} ms"
    )


def pid(broker: EmbeddedBroker) -> int:
    if broker.pid is None:
        raise Refused(f"the {broker.name} broker is not running")
    return broker.pid


async def latency(
    kind: BrokerKind,
    side: str,
    signals: list[Signal],
    expected: Expectation,
    rate: float,
    wait_ms: int = FEED_PATH_WAIT_MS,
    audit_path: str = HUB_PATH,
) -> Phase:
    router = side == "router"
    sent_key: dict[Any, tuple[str, str]] = {}
    if router:
        for s in signals:
            key = feed_exchange_id(str(s["source"]), str(s["id"]), LATENCY_RECIPIENT)
            if key in expected.exchange_ids:
                sent_key[key] = (str(s["source"]), str(s["id"]))
        topic, keyed_by = feed_topic(LATENCY_RECIPIENT), "exchange_id"
    else:
        sent_key = {
            (str(s["source"]), str(s["id"])): (str(s["source"]), str(s["id"])) for s in signals
        }
        topic, keyed_by = f"base.{LATENCY_RECIPIENT}", "signal"

    with fresh_broker(kind) as (broker, settings, tmp):
        db = f"sqlite:///{tmp / 'audit.db'}"
        SqlAuditStore.open(db).close()
        path = resolve_path(audit_path, broker)
        indexer = Child.indexing(side, path, settings, db)
        child = Child.serving(side, settings, db, len(signals), wait_ms, path)
        reader = Child(
            "feed reader",
            read_arrivals,
            settings.bootstrap,
            topic,
            keyed_by,
            wait_ms,
            len(sent_key),
            len(signals) / rate + 120.0,
        )
        try:
            if indexer is not None:
                await indexer.message(JOIN_TIMEOUT_S + 30)
            await child.message(JOIN_TIMEOUT_S + 30)
            await reader.message(60)
            broker_cpu = process_cpu_s(pid(broker))
            published = await publish(settings, signals, rate=rate)
            done = await child.message(600)
            broker_cpu = process_cpu_s(pid(broker)) - broker_cpu
            arrivals: dict[Any, float] = (await reader.message(180))["arrivals"]
            indexed = await drained(indexer, done)
        finally:
            reader.close()
            child.close()
            if indexer is not None:
                indexer.close()
        checked = await count_work(side, settings, db, int(done["signals"]), expected, len(signals))
    missing = len(sent_key.keys() - arrivals.keys())
    if missing:
        raise Refused(
            f"{side} latency run: {missing:,} of {len(sent_key):,} messages never reached {topic}"
        )
    if published.rate < MIN_RATE_SHARE * rate:
        raise Refused(
            f"{side} latency run: the publisher reached only {published.rate:,.0f} of "
            f"{rate:,.0f} signals/s (the machine is too busy for a steady rate)"
        )
    lat = [(arrivals[k] - published.sent_at[v]) * 1000 for k, v in sent_key.items()]
    print(
        f"{kind} {side} latency at {published.rate:,.0f}/s: p50 {percentile(lat, 0.5):.1f} ms, "
        f"p99 {percentile(lat, 0.99):.1f} ms over {len(lat):,} messages; CPU "
        f"{done['cpu_s'] / len(signals) * 1e6:,.0f} µs/signal; {done['batches']:,} batches, "
        f"{done['busy_s'] / max(done['batches'], 1) * 1000:.1f} ms each"
        + describe(indexed, signals),
        file=sys.stderr,
    )
    return Phase(
        int(done["signals"]),
        done["seconds"],
        done["cpu_s"],
        broker_cpu,
        checked,
        lat,
        published.rate,
        batches=int(done["batches"]),
        busy_s=done["busy_s"],
        path=path,
        indexed=indexed,
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def best(phases: list[Phase]) -> Phase:
    """The fastest of repeated runs (a shared machine only ever makes a run slower)."""
    return max(phases, key=lambda p: p.rate)


def indexer_fields(phase: Phase, *, lag: bool = False) -> dict[str, Any]:
    """The indexer's figures beside a router phase (nothing on the ``sql`` path)."""
    indexed = phase.indexed
    if indexed is None:
        return {}
    fields: dict[str, Any] = {
        "indexer_records_per_s": round(indexed.rate),
        "indexer_cpu_us": round(phase.indexer_cpu_us, 1),
        "hub_and_indexer_cpu_us": round(phase.cpu_us + phase.indexer_cpu_us, 1),
        "indexer_drain_s": round(indexed.drain_s, 2),
    }
    if lag and indexed.lag_ms:
        fields["indexer_lag_p50_ms"] = round(percentile(indexed.lag_ms, 0.5), 1)
        fields["indexer_lag_p99_ms"] = round(percentile(indexed.lag_ms, 0.99), 1)
    return fields


def latency_target(phase: Phase, p99_ms: float) -> tuple[str | dict[str, bool], bool]:
    """The latency row's target(s) and whether they are met; the indexer's lag joins the
    publish→feed target on a log-first path."""
    feed = f"p99 <= {TARGET_P99_MS:.0f} ms"
    if phase.indexed is None or not phase.indexed.lag_ms:
        return feed, p99_ms <= TARGET_P99_MS
    lag_p99 = percentile(phase.indexed.lag_ms, 0.99)
    met = {
        feed: p99_ms <= TARGET_P99_MS,
        f"indexer lag p99 <= {TARGET_INDEX_LAG_P99_MS / 1000:.0f} s": lag_p99
        <= TARGET_INDEX_LAG_P99_MS,
    }
    return met, all(met.values())


async def measure(kind: BrokerKind, args: argparse.Namespace) -> list[dict[str, Any]]:
    batch: int = getattr(args, "signed_batch", 0)
    signals = workload(args.signals, seed=1, batch=batch)
    expected = expectation(signals)
    path: str = getattr(args, "audit_path", HUB_PATH)
    runs: dict[str, list[Phase]] = {"passthrough": [], "router": []}
    for _ in range(args.repeat):  # interleaved, so a noisy minute hits both sides alike
        for side, phases in runs.items():
            phases.append(await throughput(kind, side, signals, expected, args.fetch_wait_ms, path))
    base, hub = best(runs["passthrough"]), best(runs["router"])
    steady = workload(round(args.rate * args.seconds), seed=99, batch=batch)
    steady_expected = expectation(steady)
    lat = {
        side: await latency(
            kind, side, steady, steady_expected, args.rate, args.fetch_wait_ms, path
        )
        for side in ("passthrough", "router")
    }
    ratio = hub.rate / base.rate
    p99 = {side: percentile(phase.latencies_ms, 0.99) for side, phase in lat.items()}
    p50 = {side: percentile(phase.latencies_ms, 0.5) for side, phase in lat.items()}
    audit = f"{hub.path} audit" + (" + indexer" if hub.indexed is not None else ", SQLite")
    if batch > 0:
        audit += f", signed in batches of {batch}"
    target, met = latency_target(lat["router"], p99["router"])
    return [
        {
            "name": f"router throughput ({kind}, 1 worker, {audit}, 3 feeds)",
            "hub": round(hub.rate),
            "baseline": round(base.rate),
            "unit": "signals/s",
            "ratio": round(ratio, 3),
            "target": f">= {TARGET_RATIO} x passthrough",
            "pass": ratio >= TARGET_RATIO,
            "audit_path": hub.path,
            "hub_cpu_us": round(hub.cpu_us, 1),
            "baseline_cpu_us": round(base.cpu_us, 1),
            "hub_broker_cpu_us": round(hub.broker_cpu_us, 1),
            "baseline_broker_cpu_us": round(base.broker_cpu_us, 1),
            **indexer_fields(hub),
            "runs": {side: [round(p.rate) for p in phases] for side, phases in runs.items()},
            "hub_batch_ms": round(hub.batch_ms, 1),
            "baseline_batch_ms": round(base.batch_ms, 1),
            "checked": {"router": hub.checked.as_json(), "passthrough": base.checked.as_json()},
        },
        {
            "name": f"router latency, p99 publish→feed at {args.rate:,.0f}/s ({kind}, 1 worker, "
            f"{audit})"
            + (
                ""
                if args.fetch_wait_ms == FEED_PATH_WAIT_MS
                else f", fetch wait {args.fetch_wait_ms} ms"
            ),
            "hub": round(p99["router"], 1),
            "baseline": round(p99["passthrough"], 1),
            "unit": "ms",
            "ratio": round(p99["router"] / max(p99["passthrough"], 1e-9), 2),
            "target": target,
            "pass": met,
            "audit_path": lat["router"].path,
            "hub_p50_ms": round(p50["router"], 1),
            "baseline_p50_ms": round(p50["passthrough"], 1),
            "hub_cpu_us": round(lat["router"].cpu_us, 1),
            "baseline_cpu_us": round(lat["passthrough"].cpu_us, 1),
            **indexer_fields(lat["router"], lag=True),
            "published_per_s": round(lat["router"].published_rate),
            "hub_batch_signals": round(lat["router"].batch_mean, 1),
            "hub_batch_ms": round(lat["router"].batch_ms, 1),
            "baseline_batch_signals": round(lat["passthrough"].batch_mean, 1),
            "baseline_batch_ms": round(lat["passthrough"].batch_ms, 1),
            "samples": len(lat["router"].latencies_ms),
            "checked": {
                "router": lat["router"].checked.as_json(),
                "passthrough": lat["passthrough"].checked.as_json(),
            },
        },
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=20_000)
    parser.add_argument("--broker", default="tansu", help="tansu, noida or both: tansu,noida")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs, best kept")
    parser.add_argument(
        "--fetch-wait-ms",
        type=int,
        default=FEED_PATH_WAIT_MS,
        help="fetch_max_wait_ms of every consumer (both sides and the feed reader); "
        "500 is aiokafka's default, which the hub used before",
    )
    parser.add_argument(
        "--audit-path",
        choices=(HUB_PATH, *AUDIT_PATHS),
        default=HUB_PATH,
        help="the router's audit path; hub (default): as schakel up picks it per broker "
        "(transactional on noida, audit-first on Tansu), with the audit indexer running; "
        "sql: the old path, audit and outbox in SQLite on the router's path",
    )
    parser.add_argument(
        "--signed-batch",
        type=int,
        default=0,
        metavar="N",
        help="sign the workload as the partner client does by default: N consecutive signals "
        "per partner under one signed Merkle root (the client's default is 100); 0 (default): "
        "each signal signed on its own",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds: list[BrokerKind] = []
    for name in args.broker.split(","):
        if name.strip() not in ("tansu", "noida"):
            parser.error(f"unknown broker {name!r}; use tansu, noida or tansu,noida")
        kinds.append(name.strip())  # type: ignore[arg-type]
    results = [row for kind in kinds for row in asyncio.run(measure(kind, args))]
    if args.json:
        print(orjson.dumps(results).decode())
        return
    print(f"signals: {args.signals:,}  cores: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}")
    for row in results:
        print(
            f"{row['name']}: router {row['hub']:,} vs passthrough {row['baseline']:,} {row['unit']}"
            f" (ratio {row['ratio']}); CPU µs/signal router {row['hub_cpu_us']}, passthrough "
            f"{row['baseline_cpu_us']}; target {row['target']}: "
            f"{'PASS' if row['pass'] else 'FAIL'}"
        )
        if "indexer_records_per_s" in row:
            print(
                f"  indexer: {row['indexer_records_per_s']:,} records/s, CPU µs/signal "
                f"{row['indexer_cpu_us']} (router + indexer {row['hub_and_indexer_cpu_us']}), "
                f"drained {row['indexer_drain_s']} s after the router"
                + (
                    f", lag p50/p99 {row['indexer_lag_p50_ms']} / {row['indexer_lag_p99_ms']} ms"
                    if "indexer_lag_p99_ms" in row
                    else ""
                )
            )
        print(f"  checked: {row['checked']}")


if __name__ == "__main__":
    refusing(main)
