"""How long one batch's writes take on each audit path, by producer ``linger_ms`` (a diagnostic
of the router's producer setting, not a benchmark of the router).

The router hands a whole batch to the producer before it awaits the acknowledgements, and its
write paths await in sequence (services/router/loop.py): on Tansu (``audit-first``) the audit
records, then the feeds, then where they landed, then the offset commit; on noida
(``transactional``) the feeds, then the audit records, then the offsets and the commit of the
transaction. This script makes the same steps with messages of the router's sizes (30 feed
messages of 500 bytes, 10 audit messages of 2,000 bytes per batch) on a fresh broker, 60 times
at an idle pace, and prints p50/p90/max per step for each linger. Before it prints, it reads
the topics back (``read_committed``, from the beginning: no end offsets, which Tansu reports
wrongly) and refuses unless exactly the messages written are there, each once — every message
has a value of its own, so a lost one is not hidden by a duplicate (REFUSED, exit 3).

    .venv/bin/python bench/_write_steps.py [--broker tansu,noida] [--linger 5,0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import read_topics  # noqa: E402
from bench.scratch import scratch_broker  # noqa: E402
from bench.verify import Refused, refusing  # noqa: E402
from services.broker.embedded import BrokerKind  # noqa: E402
from services.broker.partitioner import key_partitioner  # noqa: E402
from services.broker.settings import KafkaSettings  # noqa: E402

ROUNDS, WARM_UP = 60, 5
FEEDS, AUDIT = 30, 10
TOPICS = {"in": 1, "out": 4, "audit": 1}


async def _acked(
    producer: AIOKafkaProducer, topic: str, size: int, count: int, written: list[tuple[str, bytes]]
) -> None:
    """Send ``count`` messages of ``size`` bytes, each its own value (noted in ``written``, so
    the read-back finds a lost one even where another came twice), and await them all."""
    values = [f"{len(written) + i}:".encode().ljust(size, b"x") for i in range(count)]
    sends = [
        await producer.send(topic, value, key=str(i).encode(), partition=None)
        for i, value in enumerate(values)
    ]
    await asyncio.gather(*sends)
    written.extend((topic, value) for value in values)


async def _steps(
    kind: BrokerKind, settings: KafkaSettings, linger: int
) -> tuple[dict[str, list[float]], list[tuple[str, bytes]]]:
    """Per step, the milliseconds of each round; and ``(topic, value)`` of every message
    written (committed, on the transactional path)."""
    kwargs = settings.client_kwargs_aiokafka()
    transactional = kind == "noida"
    extra = {"transactional_id": f"steps-{linger}", "enable_idempotence": True}
    producer = AIOKafkaProducer(
        acks="all",
        linger_ms=linger,
        partitioner=key_partitioner,
        **(extra if transactional else {}),
        **kwargs,
    )
    consumer = AIOKafkaConsumer(
        "in", group_id=f"steps-{linger}", enable_auto_commit=False, **kwargs
    )
    await producer.start()
    await consumer.start()
    tp = TopicPartition("in", 0)
    steps: dict[str, list[float]] = {}
    written: list[tuple[str, bytes]] = []
    try:
        for i in range(ROUNDS):
            batch: list[tuple[str, bytes]] = list(written)  # numbering goes on from there
            marks = [("start", time.perf_counter())]
            if transactional:
                await producer.begin_transaction()
                await _acked(producer, "out", 500, FEEDS, batch)
                marks.append(("feeds", time.perf_counter()))
                await _acked(producer, "audit", 2000, AUDIT, batch)
                marks.append(("audit", time.perf_counter()))
                await producer.send_offsets_to_transaction({tp: i}, f"steps-{linger}")
                await producer.commit_transaction()
                marks.append(("offsets+commit", time.perf_counter()))
            else:
                await _acked(producer, "audit", 2000, AUDIT, batch)
                marks.append(("audit", time.perf_counter()))
                await _acked(producer, "out", 500, FEEDS, batch)
                marks.append(("feeds", time.perf_counter()))
                await _acked(producer, "audit", 300, 1, batch)
                marks.append(("where landed", time.perf_counter()))
                await consumer.commit({tp: i})
                marks.append(("commit", time.perf_counter()))
            written = batch  # only now: a transaction counts once it is committed
            if i >= WARM_UP:
                for (_, before), (name, at) in itertools.pairwise(marks):
                    steps.setdefault(name, []).append((at - before) * 1000)
                steps.setdefault("batch", []).append((marks[-1][1] - marks[0][1]) * 1000)
            await asyncio.sleep(0.02)  # an idle pace: each batch finds the producer empty
    finally:
        await consumer.stop()
        await producer.stop()
    return steps, written


async def measure(kind: BrokerKind, linger: int) -> dict[str, list[float]]:
    with scratch_broker(kind, TOPICS, prefix="schakel-steps-") as (_, settings, _tmp):
        steps, written = await _steps(kind, settings, linger)
        found = await read_topics(settings, ["out", "audit"], expected=len(written))
    check_read_back(f"{kind} linger {linger}", written, found)
    return steps


def check_read_back(
    what: str, written: list[tuple[str, bytes]], found: list[tuple[str, bytes]]
) -> None:
    """:class:`Refused` unless ``found`` holds exactly the messages ``written``, each once."""
    lost, extra = Counter(written) - Counter(found), Counter(found) - Counter(written)
    if lost or extra:
        raise Refused(
            f"{what}: {len(written)} messages written, {len(found)} read back "
            f"({lost.total()} missing, {extra.total()} not written or twice)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="tansu,noida")
    parser.add_argument("--linger", default="5,0")
    args = parser.parse_args()
    for kind in args.broker.split(","):
        for linger in (int(v) for v in args.linger.split(",")):
            steps = asyncio.run(measure(kind, linger))  # type: ignore[arg-type]
            for name, values in steps.items():
                values.sort()
                print(
                    f"{kind:5s} linger {linger} ms  {name:15s} p50 {statistics.median(values):5.1f}"
                    f"  p90 {values[int(len(values) * 0.9)]:5.1f}  max {values[-1]:5.1f} ms"
                )


if __name__ == "__main__":
    refusing(main)
