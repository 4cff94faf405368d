"""What a consumer's ``fetch_max_wait_ms`` costs and buys on each embedded broker (a probe for
services/broker/fetching.py, not part of ``make bench``: it has no baseline).

For each broker and each wait: one consumer in a group on a 4-partition topic, first idle for
``--idle`` seconds (the CPU time of this process and of the broker per second: the price of
polling), then ``--records`` single records published ``--gap`` ms apart, each awaited by the
consumer before the next (publish→consume delay per record: what the wait buys). Every record
must arrive, or the script exits 3 (REFUSED).

    .venv/bin/python bench/_fetch_wait.py [--broker tansu,noida] [--waits 500,100,25,10]
                                          [--idle 10] [--records 100] [--gap 37] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import process_cpu_s  # noqa: E402
from bench.scratch import scratch_broker  # noqa: E402
from bench.verify import Refused, refusing  # noqa: E402
from services.broker.embedded import BrokerKind  # noqa: E402
from services.broker.fetching import fetch_settings  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def probe(
    settings: KafkaSettings, broker_pid: int, wait_ms: int, args: argparse.Namespace
) -> dict[str, Any]:
    topic = f"probe-{wait_ms}"
    kwargs = settings.client_kwargs_aiokafka()
    consumer = AIOKafkaConsumer(
        topic, group_id=topic, auto_offset_reset="latest", **fetch_settings(wait_ms), **kwargs
    )
    producer = AIOKafkaProducer(linger_ms=0, **kwargs)
    await consumer.start()
    await producer.start()
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise Refused(f"no partitions assigned within 60 s (wait {wait_ms} ms)")
            await consumer.getmany(timeout_ms=100)
        for tp in consumer.assignment():
            await consumer.position(tp)  # resolve "latest" before anything is published
        started, cpu, broker_cpu = (
            time.perf_counter(),
            time.process_time(),
            process_cpu_s(broker_pid),
        )
        while time.perf_counter() - started < args.idle:
            if await consumer.getmany(timeout_ms=200):
                raise Refused("a record arrived on an idle topic")
        elapsed = time.perf_counter() - started
        idle = (time.process_time() - cpu) / elapsed
        idle_broker = (process_cpu_s(broker_pid) - broker_cpu) / elapsed
        delays = []
        for _ in range(args.records):
            sent = time.perf_counter()
            await (await producer.send(topic, b"probe"))
            arrived = False
            while not arrived and time.perf_counter() - sent < 10:
                arrived = bool(await consumer.getmany(timeout_ms=1000))
            if not arrived:
                raise Refused(f"a record never reached the consumer (wait {wait_ms} ms)")
            delays.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(args.gap / 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return {
        "wait_ms": wait_ms,
        "idle_client_cpu_pct": round(idle * 100, 1),
        "idle_broker_cpu_pct": round(idle_broker * 100, 1),
        "delay_p50_ms": round(nearest_rank(delays, 0.5), 1),
        "delay_p99_ms": round(nearest_rank(delays, 0.99), 1),
        "records": len(delays),
    }


async def measure(kind: BrokerKind, waits: list[int], args: argparse.Namespace) -> list[Any]:
    topics = {f"probe-{w}": 4 for w in waits}
    with scratch_broker(kind, topics, prefix="schakel-fetch-") as (broker, settings, _tmp):
        assert broker.pid is not None
        return [{"broker": kind} | await probe(settings, broker.pid, w, args) for w in waits]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", default="tansu,noida")
    parser.add_argument("--waits", default="500,100,25,10")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds per wait")
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--gap", type=float, default=37.0, help="ms between records")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    waits = [int(w) for w in args.waits.split(",")]
    rows = [
        row
        for kind in args.broker.split(",")
        for row in asyncio.run(measure(kind.strip(), waits, args))  # type: ignore[arg-type]
    ]
    if args.json:
        print(orjson.dumps(rows).decode())
        return
    print("broker  wait ms  idle CPU client %  broker %  delay p50 ms  p99 ms")
    for r in rows:
        print(
            f"{r['broker']:<7} {r['wait_ms']:>7}  {r['idle_client_cpu_pct']:>17}  "
            f"{r['idle_broker_cpu_pct']:>8}  {r['delay_p50_ms']:>12}  {r['delay_p99_ms']:>6}"
        )


if __name__ == "__main__":
    refusing(main)
