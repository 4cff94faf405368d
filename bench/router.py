"""Router throughput and latency on an embedded broker, next to an equally tuned raw aiokafka
passthrough doing the same fan-out (bench/sides.py has both sides).

Workload (bench/workload.py): signed demo signals (energy, water, housing, tips), each fanned
out to 3 recipients by bench/covenants/fanout.yaml; decided offline first, and refused unless
every signal is accepted (bench/verify.py).

For each broker, every phase on a fresh broker and an empty SQLite audit file, each side in a
child process of its own (nothing else in that process):

* throughput: the workload is published first, then the side consumes it; timed from the
  start of its first batch to the end of its last, wall clock and the side's CPU time;
* latency: the side waits for signals published at a steady ``--rate`` for ``--seconds``;
  publish→feed latency per message of one recipient's feed, read by this process (p50/p99).

After each phase the work is counted independently: feed messages (by exchange id) and dead
letters read back from the broker, audit records as rows in the store; a figure is printed only
if they equal what the workload implies, otherwise the script exits 3 (REFUSED). Ratio = router
/ passthrough, both measured in the same run. The broker's own CPU time is reported beside.

    .venv/bin/python bench/router.py [--signals 20000] [--broker tansu,noida] [--rate 1000]
                                     [--seconds 20] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import audit_rows, exchange_ids, process_cpu_s, read_topics  # noqa: E402
from bench.sides import JOIN_TIMEOUT_S, read_arrivals, serve  # noqa: E402
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
from services.broker.factory import make_broker  # noqa: E402
from services.broker.fetching import FEED_PATH_WAIT_MS  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402
from services.broker.topics import KafkaTopicAdmin  # noqa: E402
from services.router.topics import DEAD_LETTER, TopicLayout, feed_topic, signals_topic  # noqa: E402

TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0
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


@contextmanager
def fresh_broker(kind: BrokerKind) -> Iterator[tuple[EmbeddedBroker, KafkaSettings, Path]]:
    """A new broker with the hub's topics and the passthrough's, and a scratch directory."""
    with tempfile.TemporaryDirectory(prefix="schakel-bench-") as name:
        tmp = Path(name)
        broker = make_broker(kind, tmp / "broker")
        broker.start()
        try:
            settings = KafkaSettings.local(broker.bootstrap)
            partners = sorted(policy_source().current.policy.suppliers)
            spec = TopicLayout().spec(partners, RECIPIENTS)
            spec.update({f"base.{r}": 4 for r in RECIPIENTS})
            with KafkaTopicAdmin(settings) as admin:
                admin.ensure_topics(spec)
            yield broker, settings, tmp
        finally:
            broker.stop()


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
        cls, side: str, settings: KafkaSettings, db: str, expected: int, wait_ms: int
    ) -> Child:
        topics = input_topics()
        return cls(side, serve, side, settings.bootstrap, topics, db, expected, 600.0, wait_ms)

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
) -> Phase:
    with fresh_broker(kind) as (broker, settings, tmp):
        db = f"sqlite:///{tmp / 'audit.db'}"
        SqlAuditStore.open(db).close()
        await publish(settings, signals)
        child = Child.serving(side, settings, db, len(signals), wait_ms)
        try:
            await child.message(JOIN_TIMEOUT_S + 30)
            broker_cpu = process_cpu_s(pid(broker))
            done = await child.message(600)
            broker_cpu = process_cpu_s(pid(broker)) - broker_cpu
        finally:
            child.close()
        checked = await count_work(side, settings, db, int(done["signals"]), expected, len(signals))
    print(
        f"{kind} {side} throughput: {done['signals'] / max(done['seconds'], 1e-9):,.0f} signals/s, "
        f"CPU {done['cpu_s'] / len(signals) * 1e6:,.0f} µs/signal",
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
        child = Child.serving(side, settings, db, len(signals), wait_ms)
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
            await child.message(JOIN_TIMEOUT_S + 30)
            await reader.message(60)
            broker_cpu = process_cpu_s(pid(broker))
            published = await publish(settings, signals, rate=rate)
            done = await child.message(600)
            broker_cpu = process_cpu_s(pid(broker)) - broker_cpu
            arrivals: dict[Any, float] = (await reader.message(180))["arrivals"]
        finally:
            reader.close()
            child.close()
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
        f"{done['busy_s'] / max(done['batches'], 1) * 1000:.1f} ms each",
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
    )


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def best(phases: list[Phase]) -> Phase:
    """The fastest of repeated runs (a shared machine only ever makes a run slower)."""
    return max(phases, key=lambda p: p.rate)


async def measure(kind: BrokerKind, args: argparse.Namespace) -> list[dict[str, Any]]:
    signals = workload(args.signals, seed=1)
    expected = expectation(signals)
    runs: dict[str, list[Phase]] = {"passthrough": [], "router": []}
    for _ in range(args.repeat):  # interleaved, so a noisy minute hits both sides alike
        for side, phases in runs.items():
            phases.append(await throughput(kind, side, signals, expected, args.fetch_wait_ms))
    base, hub = best(runs["passthrough"]), best(runs["router"])
    steady = workload(round(args.rate * args.seconds), seed=99)
    steady_expected = expectation(steady)
    lat = {
        side: await latency(kind, side, steady, steady_expected, args.rate, args.fetch_wait_ms)
        for side in ("passthrough", "router")
    }
    ratio = hub.rate / base.rate
    p99 = {side: percentile(phase.latencies_ms, 0.99) for side, phase in lat.items()}
    p50 = {side: percentile(phase.latencies_ms, 0.5) for side, phase in lat.items()}
    return [
        {
            "name": f"router throughput ({kind}, 1 worker, SQLite audit, 3 feeds)",
            "hub": round(hub.rate),
            "baseline": round(base.rate),
            "unit": "signals/s",
            "ratio": round(ratio, 3),
            "target": f">= {TARGET_RATIO} x passthrough",
            "pass": ratio >= TARGET_RATIO,
            "hub_cpu_us": round(hub.cpu_us, 1),
            "baseline_cpu_us": round(base.cpu_us, 1),
            "hub_broker_cpu_us": round(hub.broker_cpu_us, 1),
            "baseline_broker_cpu_us": round(base.broker_cpu_us, 1),
            "runs": {side: [round(p.rate) for p in phases] for side, phases in runs.items()},
            "hub_batch_ms": round(hub.batch_ms, 1),
            "baseline_batch_ms": round(base.batch_ms, 1),
            "checked": {"router": hub.checked.as_json(), "passthrough": base.checked.as_json()},
        },
        {
            "name": f"router latency, p99 publish→feed at {args.rate:,.0f}/s ({kind}, 1 worker)"
            + (
                ""
                if args.fetch_wait_ms == FEED_PATH_WAIT_MS
                else f", fetch wait {args.fetch_wait_ms} ms"
            ),
            "hub": round(p99["router"], 1),
            "baseline": round(p99["passthrough"], 1),
            "unit": "ms",
            "ratio": round(p99["router"] / max(p99["passthrough"], 1e-9), 2),
            "target": f"p99 <= {TARGET_P99_MS:.0f} ms",
            "pass": p99["router"] <= TARGET_P99_MS,
            "hub_p50_ms": round(p50["router"], 1),
            "baseline_p50_ms": round(p50["passthrough"], 1),
            "hub_cpu_us": round(lat["router"].cpu_us, 1),
            "baseline_cpu_us": round(lat["passthrough"].cpu_us, 1),
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
        print(f"  checked: {row['checked']}")


if __name__ == "__main__":
    refusing(main)
