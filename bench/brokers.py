"""The two embedded brokers measured side by side: start-up, group join, throughput, restart
and what a SIGKILL of the broker loses (docs/architecture.md, "Measurements").

For each broker (noida, the default, and Tansu) and each run, in a fresh tmp data dir:

* *start-up to healthy*: ``broker.start()`` wall time on an empty data dir (median of 5);
* *group join*: an ``AIOKafkaConsumer`` in a new group (session timeout S, heartbeat
  min(3 s, S/3)), time from ``start()`` to a non-empty assignment, for S = 10 s and 6 s;
* *throughput*: one ``AIOKafkaProducer`` (linger 5 ms, acks=1) sends N records of 300 bytes
  without keys to a 4-partition topic, awaiting delivery in chunks of 5,000; then one consumer
  assigned to the 4 partitions reads them from the beginning (``getmany(max_records=10000)``);
* *CPU*: the broker's CPU share while it holds those N records and takes 20 single writes a
  second for 20 s (a quiet hub's traffic; noida keeps saving everything it holds);
* *restart*: ``stop()`` holding those N records, then ``start()`` on the same data dir, then
  how many records are still there;
* *SIGKILL loss*: acknowledged writes (acks=all, bursts of 100 records, each burst awaited)
  for 3 s, then ``kill()`` (SIGKILL), ``start()``, and how many acknowledged records are gone —
  once on a new broker holding nothing else, once on the broker holding the N records (noida
  saves everything it holds each time, so the save, and the window a crash loses, grows with
  the data).

Hub = noida (the default embedded broker), baseline = Tansu; the ratio is noida / Tansu. No row
has a target of its own (``pass`` is null): these are the figures the choice of default rests
on, not a requirement.

    .venv/bin/python bench/brokers.py [--runs 3] [--records 100000] [--kill-seconds 3] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.broker.embedded import BrokerKind, EmbeddedBroker  # noqa: E402
from services.broker.factory import make_broker  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402
from services.broker.topics import KafkaTopicAdmin, missing_topics  # noqa: E402

BENCH_QUICK_ARGS = ["--runs", "1", "--records", "5000", "--kill-seconds", "1"]
BENCH_ARGS = ["--runs", "3"]
KINDS: tuple[BrokerKind, ...] = ("noida", "tansu")
PARTITIONS = 4
PAYLOAD = b"x" * 300


def median_start(kind: BrokerKind, root: Path, starts: int = 5) -> float:
    """Median ``start()`` wall time on an empty data dir (a new dir per start)."""
    times = []
    for n in range(starts):
        broker = make_broker(kind, root / f"start-{n}")
        began = time.perf_counter()
        broker.start()
        times.append(time.perf_counter() - began)
        broker.kill()
    return statistics.median(times)


async def group_join(settings: KafkaSettings, topic: str, session_ms: int) -> float:
    """Seconds from a new group member's ``start()`` to its first assignment."""
    consumer = AIOKafkaConsumer(
        topic,
        group_id=f"join-{session_ms}-{time.monotonic_ns()}",
        session_timeout_ms=session_ms,
        heartbeat_interval_ms=min(3000, session_ms // 3),
        **settings.client_kwargs_aiokafka(),
    )
    began = time.perf_counter()
    await consumer.start()
    try:
        deadline = began + 60
        while not consumer.assignment():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no assignment within 60 s (session {session_ms} ms)")
            await asyncio.sleep(0.01)
        return time.perf_counter() - began
    finally:
        await consumer.stop()


async def produce(settings: KafkaSettings, topic: str, records: int) -> float:
    """Records per second acknowledged (acks=1, linger 5 ms, chunks of 5,000 awaited)."""
    producer = AIOKafkaProducer(linger_ms=5, acks=1, **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        began = time.perf_counter()
        for start in range(0, records, 5000):
            batch = [await producer.send(topic, PAYLOAD) for _ in range(min(5000, records - start))]
            await asyncio.gather(*batch)
        return records / (time.perf_counter() - began)
    finally:
        await producer.stop()


async def consume(settings: KafkaSettings, topic: str, records: int) -> float:
    """Records per second read from the beginning of the topic's partitions."""
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False, auto_offset_reset="earliest", **settings.client_kwargs_aiokafka()
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        began = time.perf_counter()
        seen = 0
        deadline = began + 120
        while seen < records and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(batch) for batch in batches.values())
        if seen < records:
            raise RuntimeError(f"read {seen} of {records} records within 120 s")
        return records / (time.perf_counter() - began)
    finally:
        await consumer.stop()


async def acknowledged_writes(settings: KafkaSettings, topic: str, seconds: float) -> int:
    """Write bursts of 100 records (acks=all, each burst awaited) for ``seconds``; how many
    the broker acknowledged."""
    producer = AIOKafkaProducer(linger_ms=2, acks="all", **settings.client_kwargs_aiokafka())
    await producer.start()
    acknowledged = 0
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            burst = [await producer.send(topic, PAYLOAD) for _ in range(100)]
            await asyncio.gather(*burst)
            acknowledged += len(burst)
    finally:
        await producer.stop()
    return acknowledged


async def trickle(settings: KafkaSettings, topic: str, seconds: float, rate: float) -> None:
    """``rate`` single acknowledged writes a second for ``seconds`` (a quiet hub's traffic)."""
    producer = AIOKafkaProducer(linger_ms=0, acks=1, **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await (await producer.send(topic, PAYLOAD))
            await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_share(broker: EmbeddedBroker, settings: KafkaSettings, topic: str) -> float:
    """The broker's CPU share (of one core) while it takes 20 writes a second for 20 s."""
    before, began = cpu_seconds(broker.pid), time.perf_counter()
    asyncio.run(trickle(settings, topic, 20.0, 20.0))
    return (cpu_seconds(broker.pid) - before) / (time.perf_counter() - began)


def stored(settings: KafkaSettings, topic: str) -> int:
    """Records the broker holds in ``topic`` (0 when the topic is gone)."""
    with KafkaTopicAdmin(settings) as admin:
        if missing_topics(admin, {topic: PARTITIONS}):
            return 0
        return sum(admin.end_offsets(topic).values())


def rss_mib(broker: EmbeddedBroker) -> float:
    pid = broker.pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(action: Callable[[], None]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def measure(kind: BrokerKind, root: Path, records: int, kill_seconds: float) -> dict[str, float]:
    """One run of every figure for ``kind``."""
    figures: dict[str, float] = {"start_s": median_start(kind, root)}
    broker = make_broker(kind, root / "data")
    broker.start()
    try:
        settings = KafkaSettings.local(broker.bootstrap)
        with KafkaTopicAdmin(settings) as admin:
            admin.ensure_topics({"bench.join": 1, "bench.load": PARTITIONS})
        figures["join_10s_s"] = asyncio.run(group_join(settings, "bench.join", 10_000))
        figures["join_6s_s"] = asyncio.run(group_join(settings, "bench.join", 6_000))
        figures["produce_per_s"] = asyncio.run(produce(settings, "bench.load", records))
        figures["consume_per_s"] = asyncio.run(consume(settings, "bench.load", records))
        figures["cpu_share"] = 100 * busy_share(broker, settings, "bench.load")
        figures["rss_mib"] = rss_mib(broker)
        figures["stop_s"] = timed(broker.stop)
        figures["restart_s"] = timed(broker.start)
        figures["kept_after_stop"] = stored(settings, "bench.load")
        figures.update(sigkill_loss(broker, kill_seconds, "full"))
    finally:
        broker.kill()
    fresh = make_broker(kind, root / "fresh")
    fresh.start()
    try:
        figures.update(sigkill_loss(fresh, kill_seconds, "fresh"))
    finally:
        fresh.kill()
    return figures


def sigkill_loss(broker: EmbeddedBroker, seconds: float, label: str) -> dict[str, float]:
    """Acknowledged writes for ``seconds``, SIGKILL, start again: how many are gone."""
    settings = KafkaSettings.local(broker.bootstrap)
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics({"bench.kill": PARTITIONS})
    acked = asyncio.run(acknowledged_writes(settings, "bench.kill", seconds))
    broker.kill()
    broker.start()
    lost = acked - stored(settings, "bench.kill")
    return {
        f"killed_{label}_acked": acked,
        f"killed_{label}_lost": lost,
        f"killed_{label}_lost_s": lost / (acked / seconds) if acked else 0.0,
    }


ROWS: list[tuple[str, str, str]] = [
    ("start_s", "start-up to healthy (median of 5)", "s"),
    ("join_10s_s", "group join, session 10 s", "s"),
    ("join_6s_s", "group join, session 6 s", "s"),
    ("produce_per_s", "produce 300 B records, acks=1", "records/s"),
    ("consume_per_s", "consume 300 B records", "records/s"),
    ("cpu_share", "broker CPU holding the records, 20 writes/s", "% of a core"),
    ("rss_mib", "broker memory (RSS) holding the records", "MiB"),
    ("stop_s", "stop() holding the records", "s"),
    ("restart_s", "start() on that data dir", "s"),
    ("kept_after_stop", "records kept across stop and start", "records"),
    ("killed_fresh_acked", "SIGKILL, new broker: records acknowledged before it", "records"),
    ("killed_fresh_lost", "SIGKILL, new broker: acknowledged records lost", "records"),
    ("killed_fresh_lost_s", "SIGKILL, new broker: acknowledged writes lost", "s of writes"),
    ("killed_full_acked", "SIGKILL, holding the records: acknowledged before it", "records"),
    ("killed_full_lost", "SIGKILL, holding the records: acknowledged records lost", "records"),
    ("killed_full_lost_s", "SIGKILL, holding the records: acknowledged writes lost", "s of writes"),
]


def spread(values: list[float]) -> str:
    """The lowest and highest figure over the runs (one figure when they agree)."""

    def fmt(value: float) -> str:
        whole = abs(value) >= 100 or float(value).is_integer()
        return f"{value:,.0f}" if whole else f"{value:.2f}"

    low, high = fmt(min(values)), fmt(max(values))
    return low if low == high else f"{low}\N{EN DASH}{high}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--kill-seconds", type=float, default=3.0)
    parser.add_argument("--json", action="store_true", help="bench/run.py rows on stdout")
    args = parser.parse_args()
    results: dict[BrokerKind, list[dict[str, float]]] = {kind: [] for kind in KINDS}
    for run in range(args.runs):
        for kind in KINDS:  # interleaved, so a busy moment of the machine hits both
            with tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") as tmp:
                print(f"run {run + 1}/{args.runs}: {kind}", file=sys.stderr, flush=True)
                results[kind].append(measure(kind, Path(tmp), args.records, args.kill_seconds))
    if args.json:
        rows: list[dict[str, Any]] = []
        for key, name, unit in ROWS:
            hub = statistics.median(r[key] for r in results["noida"])
            base = statistics.median(r[key] for r in results["tansu"])
            rows.append(
                {
                    "name": f"broker: {name} (noida vs tansu)",
                    "hub": hub,
                    "baseline": base,
                    "unit": unit,
                    "ratio": hub / base if base else None,
                    "target": "-",
                    "pass": None,
                }
            )
        print(orjson.dumps(rows).decode())
        return
    print(f"{args.runs} run(s), {args.records:,} records, {args.kill_seconds:g} s before SIGKILL")
    print(f"| | {' | '.join(KINDS)} |\n|---|{'---|' * len(KINDS)}")
    for key, name, unit in ROWS:
        cells = [f"{spread([r[key] for r in results[kind]])} {unit}" for kind in KINDS]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
