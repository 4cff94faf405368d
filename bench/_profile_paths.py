"""CPU per signal of the router, the audit indexer and the broker on one audit path, with an
optional py-spy profile of each phase (for finding where the time goes, not a benchmark).

One process, one fresh embedded broker: the workload (bench/workload.py) is published, then
the router (:class:`~services.router.loop.RouterLoop`, the ``--path`` given) routes all of it,
then — on a log-first path — the audit indexer (:class:`~services.indexer.loop.IndexerLoop`)
indexes the audit topic to its end. The phases run one after the other, so each one's CPU time
(``time.process_time``) is its own, and the broker's (``/proc``) is measured across each. With
``--profile DIR`` py-spy samples this process during each phase and writes collapsed stacks to
``DIR/<broker>-<path>-<phase>.txt`` (summarised by bench/_flame_summary.py; py-spy is not a
dependency of the project: ``.venv/bin/pip install py-spy``).

The work is checked as bench/router.py checks it (feeds by exchange id, audit rows).

    .venv/bin/python bench/_profile_paths.py [--broker noida] [--path transactional]
                                            [--signals 5000] [--signed-batch 0]
                                            [--profile out/profile] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.observe import audit_rows, exchange_ids, process_cpu_s, read_topics  # noqa: E402
from bench.router import fresh_broker, input_topics, pid  # noqa: E402
from bench.verify import Counts, Refused, check, check_exchanges, refusing  # noqa: E402
from bench.workload import RECIPIENTS, expectation, policy_source, publish, workload  # noqa: E402
from services.audit.store import SqlAuditStore  # noqa: E402
from services.broker.embedded import BrokerKind  # noqa: E402
from services.database.engine import make_engine  # noqa: E402
from services.indexer.loop import IndexerConfig, IndexerLoop  # noqa: E402
from services.router.gc_tuning import tune_gc  # noqa: E402
from services.router.loop import AUDIT_PATHS, AuditPath, LoopConfig, RouterLoop  # noqa: E402
from services.router.topics import DEAD_LETTER, feed_topic  # noqa: E402


@contextmanager
def sampled(profile_dir: Path | None, name: str) -> Iterator[None]:
    """py-spy sampling this process (native frames off, idle off) while the block runs."""
    if profile_dir is None:
        yield
        return
    profile_dir.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise Refused(f"--profile needs py-spy beside {sys.executable}: pip install py-spy")
    out = profile_dir / f"{name}.txt"
    child = subprocess.Popen(  # noqa: S603 - our own venv's py-spy on our own pid
        [str(spy), "record", "-p", str(os.getpid()), "-r", "250", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        child.send_signal(signal.SIGINT)
        child.wait(30)


class Meter:
    """CPU seconds of this process and of the broker across a phase."""

    def __init__(self, broker_pid: int) -> None:
        self._pid = broker_pid
        self.cpu = self.broker = self.wall = 0.0

    def __enter__(self) -> Meter:
        self._c0, self._b0, self._w0 = (
            time.process_time(),
            process_cpu_s(self._pid),
            time.perf_counter(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = time.process_time() - self._c0
        self.broker = process_cpu_s(self._pid) - self._b0
        self.wall = time.perf_counter() - self._w0


async def run(
    kind: BrokerKind, path: AuditPath, n: int, profile: Path | None, batch: int = 0
) -> dict[str, Any]:
    signals = workload(n, seed=1, batch=batch)
    expected = expectation(signals)
    out: dict[str, Any] = {"broker": kind, "path": path, "signals": n, "signed_batch": batch}
    with fresh_broker(kind) as (broker, settings, tmp):
        db = f"sqlite:///{tmp / 'audit.db'}"
        SqlAuditStore.open(db).close()
        await publish(settings, signals)
        tune_gc()
        store = SqlAuditStore(make_engine(db))
        config = LoopConfig(
            topics=input_topics(), group_id="profile-router", instance_id="p-0", audit_path=path
        )
        router = RouterLoop(
            settings, store, policy_source(), config, clock=lambda: datetime.now(UTC)
        )
        await router.start()
        consumer = router._consumer  # the harness drives the loop's polls itself
        assert consumer is not None
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=0)  # joins the group; nothing fetched before
        with sampled(profile, f"{kind}-{path}-router"), Meter(pid(broker)) as meter:
            while router.stats.signals < n:
                polled = await consumer.getmany(timeout_ms=200, max_records=config.batch_max)
                if polled:
                    await router.process(polled)
        await router.stop()
        out["router"] = _phase(meter, n, router.stats.batches)
        if path != "sql":
            indexer = IndexerLoop(settings, store, IndexerConfig())
            await indexer.start()
            while not indexer.consumer.assignment():
                await asyncio.sleep(0.05)
            with sampled(profile, f"{kind}-{path}-indexer"), Meter(pid(broker)) as meter:
                while True:
                    polled = await indexer.consumer.getmany(timeout_ms=200, max_records=64)
                    if polled:
                        await indexer.process(polled)
                    elif not sum((await indexer.lag()).values()):
                        break
            await indexer.stop()
            out["indexer"] = _phase(meter, n, indexer.stats.polls)
        store.close()
        feeds = await read_topics(
            settings, [feed_topic(r) for r in RECIPIENTS], expected=expected.counts.deliveries
        )
        ids = exchange_ids(feeds)
        check_exchanges("router", expected.exchange_ids, ids)
        dead = await read_topics(settings, [DEAD_LETTER], expected=expected.counts.dead_letters)
        found = Counts(
            signals=router.stats.signals,
            deliveries=len(ids),
            audit_records=audit_rows(db),
            dead_letters=len(dead),
        )
        out["checked"] = check("router", expected.counts, found).as_json()
    out["load"] = os.getloadavg()
    return out


def _phase(meter: Meter, n: int, steps: int) -> dict[str, float]:
    return {
        "cpu_us_per_signal": round(meter.cpu / n * 1e6, 1),
        "broker_cpu_us_per_signal": round(meter.broker / n * 1e6, 1),
        "signals_per_s": round(n / meter.wall) if meter.wall else 0,
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--broker", default="noida", choices=("tansu", "noida"))
    parser.add_argument("--path", default="transactional", choices=AUDIT_PATHS)
    parser.add_argument("--signals", type=int, default=5000)
    parser.add_argument("--profile", type=Path, default=None, help="directory for py-spy output")
    parser.add_argument(
        "--signed-batch", type=int, default=0, help="signals per signed batch (0: single)"
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args.broker, args.path, args.signals, args.profile, args.signed_batch))
    print(orjson.dumps(result).decode() if args.json else result)


if __name__ == "__main__":
    refusing(main)
