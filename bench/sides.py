"""The two sides of bench/router.py, each run in a child process of its own.

* ``router``: the hub's :class:`~services.router.loop.RouterLoop` (validation, signature,
  policy, pseudonyms, 3 feed messages, offsets committed after the writes) on the audit path it
  is given, as a router worker runs it: ``transactional`` / ``audit-first`` (the audit records
  go to the ``audit`` topic; :func:`index` runs the audit indexer beside it, in a process of
  its own, as ``schakel up`` does) or ``sql`` (audit records and outbox in SQLite on the
  router's path);
* ``passthrough``: a raw aiokafka consumer/producer pair doing the same fan-out without the
  hub — consume, parse, 3 x HMAC-SHA256 (one pseudonym per recipient), produce 3 copies to
  ``base.<recipient>``, await the acknowledgements, commit — **tuned equally**: the same
  consumer settings (:func:`~services.broker.fetching.fetch_settings`, poll size, session),
  the same producer settings (``acks=all``, linger, batch size) and the same garbage-collector
  tuning as the router worker.

The latency phase's feed reader (:func:`read_arrivals`) and the audit indexer (:func:`index`)
run in child processes too, so the publisher in the parent has its process to itself. Feeds
are read ``read_committed``, as recipients read them.

A side joins its group, reports ``ready``, processes until it has handled ``expected``
signals, and reports the wall-clock and CPU seconds of this process from the start of its first
batch to the end of its last (so the figure holds the side's own work, not the publisher's or
the reader's, which run in the parent).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.workload import RECIPIENTS, policy_source
from services.audit.store import SqlAuditStore
from services.broker.fetching import fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.database.engine import make_engine
from services.indexer.loop import IndexerConfig, IndexerLoop
from services.router.gc_tuning import tune_gc
from services.router.loop import AuditPath, LoopConfig, RouterLoop

JOIN_TIMEOUT_S = 60.0
ROUTER_GROUP = "bench-router"
PASSTHROUGH_GROUP = "bench-passthrough"


@dataclass
class Window:
    """Wall-clock and CPU time of this process from the first batch to the last."""

    first: float | None = None
    cpu_first: float = 0.0
    last: float = 0.0
    cpu_last: float = 0.0
    batches: int = 0
    busy: float = 0.0
    """Seconds spent inside batches (the rest of the window is waiting for records)."""
    _began: float = 0.0

    def begin(self) -> None:
        self._began = time.perf_counter()
        if self.first is None:
            self.first, self.cpu_first = self._began, time.process_time()

    def end(self) -> None:
        self.last, self.cpu_last = time.perf_counter(), time.process_time()
        self.batches += 1
        self.busy += self.last - self._began

    def result(self, signals: int) -> dict[str, float]:
        """Figures of the window; ``ended_at`` is the ``perf_counter`` of the last batch's end
        (comparable across processes on Linux: the drain time of the indexer after the
        router)."""
        if self.first is None:
            return {
                "signals": signals,
                "seconds": 0.0,
                "cpu_s": 0.0,
                "batches": 0,
                "busy_s": 0.0,
                "ended_at": 0.0,
            }
        return {
            "signals": signals,
            "seconds": self.last - self.first,
            "cpu_s": self.cpu_last - self.cpu_first,
            "batches": self.batches,
            "busy_s": self.busy,
            "ended_at": self.last,
        }


class TimedRouter(RouterLoop):
    """The router loop, noting when its first batch began and its last ended."""

    window: Window

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        self.window.begin()
        await super().process(batches)
        self.window.end()

    def assigned(self) -> bool:
        return bool(self._consumer is not None and self._consumer.assignment())


class Passthrough:
    """Consume, 3 x HMAC, produce 3, commit: the fan-out without validation, policy or audit."""

    def __init__(self, settings: KafkaSettings, topics: list[str], config: LoopConfig) -> None:
        kwargs = settings.client_kwargs_aiokafka()
        self.window = Window()
        self.signals = 0
        self._config = config
        self._keys = [hashlib.sha256(r.encode()).digest() for r in RECIPIENTS]
        self._producer = AIOKafkaProducer(
            acks="all",
            linger_ms=config.linger_ms,
            max_batch_size=config.producer_batch_bytes,
            **kwargs,
        )
        self._consumer = AIOKafkaConsumer(
            *topics,
            group_id=PASSTHROUGH_GROUP,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.batch_max,
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
            rebalance_timeout_ms=config.rebalance_timeout_ms,
            **fetch_settings(config.fetch_max_wait_ms),
            **kwargs,
        )

    async def start(self) -> None:
        await self._producer.start()
        await self._consumer.start()
        hold_empty_fetches(self._consumer, self._config.fetch_max_wait_ms)  # as the router's

    def assigned(self) -> bool:
        return bool(self._consumer.assignment())

    async def step(self) -> None:
        batches = await self._consumer.getmany(
            timeout_ms=self._config.poll_timeout_ms, max_records=self._config.batch_max
        )
        if not batches:
            return
        self.window.begin()
        sends = []
        for messages in batches.values():
            for message in messages:
                body = orjson.loads(message.value or b"{}")
                subject = str(body.get("id", "")).encode()
                for recipient, key in zip(RECIPIENTS, self._keys, strict=True):
                    copy = {**body, "pseudonym": hmac.new(key, subject, "sha256").hexdigest()}
                    sends.append(
                        await self._producer.send(
                            f"base.{recipient}", orjson.dumps(copy), key=message.key
                        )
                    )
                self.signals += 1
        await asyncio.gather(*sends)
        await self._consumer.commit({tp: ms[-1].offset + 1 for tp, ms in batches.items() if ms})
        self.window.end()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._producer.stop()


def serve(
    side: str,
    bootstrap: str,
    topics: list[str],
    db: str,
    expected: int,
    timeout_s: float,
    wait_ms: int,
    audit_path: AuditPath,
    conn: Connection,
) -> None:
    """Child process entry: run ``side`` until ``expected`` signals are handled."""
    try:
        done = asyncio.run(
            _serve(side, bootstrap, topics, db, expected, timeout_s, wait_ms, audit_path, conn)
        )
        conn.send(done)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses the run
        conn.send({"error": f"{exc.__class__.__name__}: {exc}"})


async def _serve(
    side: str,
    bootstrap: str,
    topics: list[str],
    db: str,
    expected: int,
    timeout_s: float,
    wait_ms: int,
    audit_path: AuditPath,
    conn: Connection,
) -> dict[str, float]:
    settings = KafkaSettings.local(bootstrap)
    config = LoopConfig(
        topics=topics,
        group_id=ROUTER_GROUP,
        instance_id="bench-0",
        fetch_max_wait_ms=wait_ms,
        audit_path=audit_path,
    )
    tune_gc()  # as a router worker process does, on both sides
    if side == "passthrough":
        passthrough = Passthrough(settings, topics, config)
        await passthrough.start()
        try:
            await _joined(passthrough.assigned, passthrough.step, conn)
            deadline = time.monotonic() + timeout_s
            while passthrough.signals < expected and time.monotonic() < deadline:
                await passthrough.step()
            return passthrough.window.result(passthrough.signals)
        finally:
            await passthrough.stop()
    store = SqlAuditStore(make_engine(db))
    router = TimedRouter(settings, store, policy_source(), config, clock=lambda: datetime.now(UTC))
    router.window = Window()
    task: asyncio.Task[None] | None = None
    await router.start()
    try:
        await _joined(router.assigned, lambda: asyncio.sleep(0.05), conn)
        task = asyncio.create_task(router.run())
        deadline = time.monotonic() + timeout_s
        while router.stats.signals < expected and time.monotonic() < deadline:
            if task.done():
                task.result()  # raises what stopped the loop
            await asyncio.sleep(0.002)
        return router.window.result(router.stats.signals)
    finally:
        await router.stop()
        if task is not None:
            await asyncio.wait_for(task, 30)
        store.close()


async def _joined(assigned: Any, poll: Any, conn: Connection) -> None:
    """Wait until the group gave this side its partitions, then tell the parent."""
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while not assigned():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no partitions assigned within {JOIN_TIMEOUT_S:.0f} s")
        await poll()
    conn.send({"ready": True})


def read_arrivals(
    bootstrap: str,
    topic: str,
    keyed_by: str,
    wait_ms: int,
    expected: int,
    timeout_s: float,
    conn: Connection,
) -> None:
    """Child process entry: note when each message of ``topic`` arrives (``perf_counter``,
    comparable across processes on Linux), keyed by its ``exchange_id`` (a feed) or by
    ``(source, id)`` (a passthrough copy), until ``expected`` keys are in or ``timeout_s``."""
    try:
        arrivals = asyncio.run(
            _read(bootstrap, topic, keyed_by, wait_ms, expected, timeout_s, conn)
        )
        conn.send({"arrivals": arrivals})
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses the run
        conn.send({"error": f"{exc.__class__.__name__}: {exc}"})


async def _read(
    bootstrap: str,
    topic: str,
    keyed_by: str,
    wait_ms: int,
    expected: int,
    timeout_s: float,
    conn: Connection,
) -> dict[Any, float]:
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # as recipients read: no feed of an open transaction
        **fetch_settings(wait_ms),
        **KafkaSettings.local(bootstrap).client_kwargs_aiokafka(),
    )
    await consumer.start()
    arrivals: dict[Any, float] = {}
    try:
        await consumer.topics()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            raise RuntimeError(f"{topic} has no partitions")
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        conn.send({"ready": True})
        deadline = time.monotonic() + timeout_s
        while len(arrivals) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    body = orjson.loads(message.value or b"{}")
                    key: Any = (
                        str(body["exchange_id"])
                        if keyed_by == "exchange_id"
                        else (str(body["source"]), str(body["id"]))
                    )
                    arrivals.setdefault(key, now)
    finally:
        await consumer.stop()
    return arrivals


def index(bootstrap: str, db: str, timeout_s: float, conn: Connection) -> None:
    """Child process entry: the audit indexer (:class:`~services.indexer.loop.IndexerLoop`,
    its own group, ``read_committed``) writing the audit topic into the store at ``db``. Runs
    until the parent says the router is done (any message on ``conn``) and the topic is then
    indexed to its end; reports its window (first to last indexing step), the records it read
    and found new, and how long each audit message waited between being produced and being
    in SQL (``lag_ms``, from the message's timestamp)."""
    try:
        conn.send(asyncio.run(_index(bootstrap, db, timeout_s, conn)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses the run
        conn.send({"error": f"{exc.__class__.__name__}: {exc}"})


async def _index(bootstrap: str, db: str, timeout_s: float, conn: Connection) -> dict[str, Any]:
    store = SqlAuditStore(make_engine(db))
    indexer = IndexerLoop(KafkaSettings.local(bootstrap), store, IndexerConfig())
    window = Window()
    lags_ms: list[float] = []
    await indexer.start()
    consumer = indexer.consumer
    try:
        await _joined(lambda: bool(consumer.assignment()), lambda: asyncio.sleep(0.05), conn)
        deadline = time.monotonic() + timeout_s
        router_done = caught_up = False
        while time.monotonic() < deadline:
            polled = await consumer.getmany(timeout_ms=100, max_records=64)
            if polled:
                window.begin()
                await indexer.process(polled)
                window.end()
                now_ms = time.time() * 1000
                lags_ms.extend(now_ms - m.timestamp for ms in polled.values() for m in ms)
                continue
            if not router_done:
                if conn.poll():
                    conn.recv()
                    router_done = True  # one more fetch, issued after the router's last commit
                continue
            if not sum((await indexer.lag()).values()):
                caught_up = True
                break
        if not caught_up:
            raise TimeoutError(f"the audit topic was not indexed to its end in {timeout_s:.0f} s")
        result: dict[str, Any] = dict(window.result(indexer.stats.records))
        result.update(new=indexer.stats.new, refused=indexer.stats.refused, lag_ms=lags_ms)
        return result
    finally:
        await indexer.stop()
        store.close()
