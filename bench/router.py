"""Router throughput and latency on the embedded broker, next to a raw aiokafka passthrough.

Workload: N demo signals (energy, water, housing, tips) pre-published to the partners'
topics, each fanned out to 3 recipients by bench/covenants/fanout.yaml.

* hub: the router loop (validation, policy, pseudonyms, SQLite audit + outbox, 3 feed
  messages per signal, offsets committed after the writes);
* baseline: an aiokafka consumer/producer pair on the same topics that parses each signal
  with the same JSON library and produces the same 3 copies — no validation, policy or audit;

both in this process on the same event loop, one after the other (no contention). Then the
latency run: signals published at a steady rate while the router runs, publish→feed latency
measured per delivered message (p50/p99).

    .venv/bin/python bench/router.py [--signals 30000] [--broker tansu|noida] [--rate 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.audit.engine import make_engine  # noqa: E402
from services.audit.store import SqlAuditStore  # noqa: E402
from services.broker.factory import make_broker  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402
from services.broker.topics import KafkaTopicAdmin  # noqa: E402
from services.config import Loaded, Paths, load_policy  # noqa: E402
from services.core.decision import exchange_id  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.demo import generate  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402
from services.router.gc_tuning import tune_gc  # noqa: E402
from services.router.loop import AUDIT_PATHS, AuditPath, LoopConfig, RouterLoop  # noqa: E402
from services.router.policy_source import PolicySource  # noqa: E402
from services.router.topics import TopicLayout, feed_topic, signals_topic  # noqa: E402

TYPES = {
    "energy.consumption_anomaly.v1",
    "water.abnormal_use.v1",
    "housing.observation.v1",
    "residents.anonymous_tip.v1",
}
RECIPIENTS = ["riec-nh", "politie-nh", "gemeente-alkmaar"]
TARGET_RATIO = 0.5
TARGET_P99_MS = 200.0
BENCH_QUICK_ARGS = ["--signals", "1500", "--seconds", "10", "--rate", "200"]  # see bench/run.py
BENCH_ARGS = ["--signals", "20000", "--seconds", "10"]  # make bench


def workload(count: int, seed: int) -> list[dict[str, object]]:
    traffic = generate(count * 2, seed=seed, start=datetime(2026, 9, 1, tzinfo=UTC))
    signals = [s for s in traffic.signals if s["type"] in TYPES]
    out = []
    for i in range(count):
        s = dict(signals[i % len(signals)])
        s["id"] = f"bench-{seed}-{i}"
        out.append(s)
    return out


PSEUDONYMISER = Pseudonymiser(MemoryKeyStore.for_tests())
"""The router's keys: the latency run matches each signal to its feed message by the keyed
exchange id the recipient is given (services/core/pseudonyms.py ``exchange_token``)."""


def policy_source() -> PolicySource:
    paths = Paths.from_env({})
    pseudonymiser = PSEUDONYMISER
    covenants = [ROOT / "bench" / "covenants"]

    def load(today: date) -> Loaded:
        return load_policy(
            covenants, paths.schemas, paths.reference, pseudonymiser, today=today, demo=True
        )

    return PolicySource(load, covenants, today=lambda: date(2026, 11, 22))


async def publish(
    settings: KafkaSettings, signals: list[dict[str, object]], rate: float | None = None
) -> dict[str, float]:
    producer = AIOKafkaProducer(
        linger_ms=5, max_batch_size=256 * 1024, **settings.client_kwargs_aiokafka()
    )
    await producer.start()
    sent_at: dict[str, float] = {}
    try:
        futures = []
        started = time.perf_counter()
        for i, signal in enumerate(signals):
            if rate is not None:
                delay = started + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            futures.append(
                await producer.send(signals_topic(str(signal["source"])), orjson.dumps(signal))
            )
            hub_id = exchange_id(str(signal["source"]), str(signal["id"]), "riec-nh")
            sent_at[PSEUDONYMISER.exchange_token(hub_id)] = time.perf_counter()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent_at


async def passthrough(settings: KafkaSettings, topics: list[str], expected: int) -> float:
    kwargs = settings.client_kwargs_aiokafka()
    consumer = AIOKafkaConsumer(
        *topics,
        group_id="bench-passthrough",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=500,
        session_timeout_ms=10_000,
        **kwargs,
    )
    producer = AIOKafkaProducer(linger_ms=5, max_batch_size=256 * 1024, acks="all", **kwargs)
    await consumer.start()
    await producer.start()
    seen = 0
    started = None
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            if not batches:
                continue
            started = started or time.perf_counter()
            futures = []
            for messages in batches.values():
                for message in messages:
                    body = orjson.loads(message.value)
                    for recipient in RECIPIENTS:
                        futures.append(
                            await producer.send(
                                f"base.{recipient}", orjson.dumps(body), key=message.key
                            )
                        )
                    seen += 1
            await asyncio.gather(*futures)
            await consumer.commit({tp: ms[-1].offset + 1 for tp, ms in batches.items()})
        return time.perf_counter() - (started or time.perf_counter())
    finally:
        await consumer.stop()
        await producer.stop()


async def router(
    settings: KafkaSettings, topics: list[str], expected: int, db: Path, path: AuditPath = "sql"
) -> tuple[float, RouterLoop]:
    store = SqlAuditStore(make_engine(f"sqlite:///{db}"))
    store.create_schema()
    loop = RouterLoop(
        settings,
        store,
        policy_source(),
        LoopConfig(topics=topics, group_id="bench-router", audit_path=path, instance_id="b0"),
        clock=lambda: datetime.now(UTC),
    )
    await loop.start()
    task = asyncio.create_task(loop.run())
    started = None
    try:
        while loop.stats.signals < expected:
            if task.done():
                task.result()
            if started is None and loop.stats.signals:
                started = time.perf_counter() - 0.0
            await asyncio.sleep(0.005)
        return time.perf_counter() - (started or time.perf_counter()), loop
    finally:
        await loop.stop()
        await asyncio.wait_for(task, 30)
        store.close()


async def latency(
    settings: KafkaSettings, topics: list[str], rate: float, seconds: float, db: Path
) -> list[float]:
    signals = workload(int(rate * seconds), seed=99)
    store = SqlAuditStore(make_engine(f"sqlite:///{db}"))
    store.create_schema()
    loop = RouterLoop(
        settings,
        store,
        policy_source(),
        LoopConfig(topics=topics, group_id="bench-latency", batch_max=200, start_at="latest"),
        clock=lambda: datetime.now(UTC),
    )
    await loop.start()
    feed = AIOKafkaConsumer(
        feed_topic("riec-nh"),
        group_id="bench-latency-reader",
        auto_offset_reset="latest",
        **settings.client_kwargs_aiokafka(),
    )
    await feed.start()
    # latest: only messages produced from now on; let both join their groups first
    for _ in range(100):
        await feed.getmany(timeout_ms=100)
        if feed.assignment():
            break
    task = asyncio.create_task(loop.run())
    await asyncio.sleep(6)  # Tansu makes a group join wait half the session timeout
    arrivals: dict[str, float] = {}
    stop = asyncio.Event()

    async def read() -> None:
        while not stop.is_set():
            batch = await feed.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    arrivals[orjson.loads(message.value)["exchange_id"]] = now

    reader = asyncio.create_task(read())
    sent = await publish(settings, signals, rate=rate)
    deadline = time.monotonic() + 20
    while len(sent.keys() & arrivals.keys()) < len(sent) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    stop.set()
    await reader
    print(
        f"latency run: sent {len(sent)}, arrived {len(arrivals)}, router {loop.stats}",
        file=sys.stderr,
    )
    await loop.stop()
    await asyncio.wait_for(task, 30)
    await feed.stop()
    store.close()
    return [(arrivals[k] - t) * 1000 for k, t in sent.items() if k in arrivals]


def percentile(values: list[float], q: float) -> float:
    if not values:  # nothing arrived during the latency run (too short for the group join)
        return float("inf")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="schakel-bench-") as tmp:
        broker = make_broker(args.broker, Path(tmp) / "broker")
        broker.start()
        try:
            settings = KafkaSettings.local(broker.bootstrap)
            source = policy_source()
            partners = sorted(source.current.policy.suppliers)
            spec = TopicLayout().spec(partners, RECIPIENTS)
            spec.update({f"base.{r}": 4 for r in RECIPIENTS})
            with KafkaTopicAdmin(settings) as admin:
                admin.ensure_topics(spec)
            topics = [signals_topic(p) for p in partners]
            await publish(settings, workload(args.signals, seed=1))
            tune_gc()  # as a router worker process does (baseline and hub alike)
            base_s = await passthrough(settings, topics, args.signals)
            hub_s, loop = await router(
                settings, topics, args.signals, Path(tmp) / "audit.db", args.audit_path
            )
            latencies = await latency(
                settings, topics, args.rate, args.seconds, Path(tmp) / "latency.db"
            )
        finally:
            broker.stop()
    hub_rate, base_rate = args.signals / hub_s, args.signals / base_s
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return {
        "name": f"router end to end ({args.broker}, 3 feeds + audit)",
        "hub": round(hub_rate),
        "baseline": round(base_rate),
        "unit": "signals/s",
        "ratio": round(hub_rate / base_rate, 3),
        "target": f">= {TARGET_RATIO} x passthrough; p99 <= {TARGET_P99_MS:.0f} ms at {args.rate:.0f}/s",
        "pass": hub_rate / base_rate >= TARGET_RATIO and p99 <= TARGET_P99_MS,
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "latency_samples": len(latencies),
        "delivered_per_signal": round(loop.stats.delivered / max(1, loop.stats.signals), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--broker", choices=["tansu", "noida"], default="tansu")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--audit-path",
        choices=AUDIT_PATHS,
        default="sql",
        help="the router's audit path (log-first paths leave the indexing to the indexer)",
    )
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    if args.json:
        print(orjson.dumps(result).decode())
        return
    print(f"signals: {args.signals:,}  broker: {args.broker}  cores: {os.cpu_count()}")
    print(f"hub (router loop, policy, SQLite audit, 3 feeds): {result['hub']:>8,} signals/s")
    print(f"baseline (aiokafka passthrough, 3 copies):       {result['baseline']:>8,} signals/s")
    print(f"ratio hub/baseline: {result['ratio']}   (target >= {TARGET_RATIO})")
    print(
        f"latency at {args.rate:.0f} signals/s: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
        f"over {result['latency_samples']} messages (target p99 <= {TARGET_P99_MS:.0f} ms)"
    )
    print("PASS" if result["pass"] else "FAIL")


if __name__ == "__main__":
    main()
