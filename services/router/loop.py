"""The router's consume → decide → write → commit loop (aiokafka, batched).

Why not one Faust agent per message: Faust's per-message machinery costs ~60 µs of CPU per
input on top of aiokafka, several times the policy itself (docs/architecture.md). Faust stays
the application framework — app, lifecycle, worker, web — and hosts this loop as a service.

Each batch is decided (pure, :func:`services.router.batch.route_batch`) and then written by
one of three *audit paths* (:data:`AUDIT_PATHS`, chosen per broker):

``transactional`` (noida, Apache Kafka) — the Kafka log is the write-ahead record. Feed
    messages, dead letters, the batch's audit records (with a copy of every feed message, for
    re-delivery) on the ``audit`` topic and the consumed offsets go in **one Kafka
    transaction**; readers use ``read_committed``, so a crash before the commit leaves nothing
    visible and the batch is read again. The audit indexer (:mod:`services.indexer`) builds
    the SQL index and hash chain from the topic.
``audit-first`` (Tansu: no transactions) — the batch's audit records and feed copies are sent
    and **acknowledged before any feed message** is sent; then the feeds and dead letters,
    then where the feeds landed (a ``produced`` message), then the offset commit. A crash in
    between re-reads the batch, whose decisions the router then finds on the log: they stand
    (a reloaded covenant does not decide them again) and their unacknowledged feed messages
    are produced as logged (:meth:`RouterLoop._screened`).
``sql`` (the explicit fallback, ``SCHAKEL_AUDIT_PATH=sql``) — audit records and the feed
    outbox in one SQL transaction, then the feeds, then the produced offsets, then the commit.

In every path any error stops the loop *without* committing its offsets, so nothing is
acknowledged that was not written; exchange and record ids are deterministic, and a decision
already in the audit index or on the audit log is never made again, so a replay writes
nothing new (docs/architecture.md, "A signal is decided once").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from services.audit.model import AuditStore
from services.broker.batch_loop import BatchLoop
from services.broker.fetching import FEED_PATH_WAIT_MS, fetch_settings, hold_empty_fetches
from services.broker.partitioner import key_partitioner
from services.broker.settings import KafkaSettings
from services.core.audit_log import FeedCopy, encode
from services.router.audit_tail import AuditTail, Logged
from services.router.batch import Consumed, RoutedBatch, route_batch
from services.router.policy_source import PolicySource
from services.router.resend import CONFLICTING_RESEND, Screened, decided_ids, screen_resends
from services.router.tail_reader import TailReader, kafka_tail_reader
from services.router.topics import AUDIT, DEAD_LETTER, feed_topic

if TYPE_CHECKING:
    from services.metrics.router import RouterMetrics

log = logging.getLogger("schakel.router")

Clock = Callable[[], datetime]
AuditPath = Literal["transactional", "audit-first", "sql"]
AUDIT_PATHS: tuple[AuditPath, ...] = ("transactional", "audit-first", "sql")
CrashPoint = Callable[[str], None]
"""Called at the named moments of a batch ("audit-acked", "before-commit"); tests raise there
to attack the ordering. Never set in production."""
OpenTail = Callable[[AuditTail], TailReader]
"""Builds the reader of the audit topic's unindexed tail (log-first paths; tests pass one on
the in-memory audit log, services/indexer/testing.py)."""


@dataclass(frozen=True)
class LoopConfig:
    topics: Sequence[str]
    group_id: str = "schakel-router"
    instance_id: str | None = None
    """Static group membership (KIP-345): a worker restarted after a crash takes over its own
    old membership at once instead of waiting for the group to expire it."""
    batch_max: int = 500
    poll_timeout_ms: int = 200
    fetch_max_wait_ms: int = FEED_PATH_WAIT_MS
    """How long an empty fetch waits at the broker; adds up to that to publish→feed latency
    (:mod:`services.broker.fetching`)."""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    rebalance_timeout_ms: int = 20_000
    """How long a rebalance waits for members that have not rejoined (Kafka's default is
    max.poll.interval.ms, 5 minutes): a worker killed with SIGKILL must not stall the group."""
    linger_ms: int = 0
    """How long the producer waits for more messages before it sends. A batch's messages are
    all handed to the producer before any acknowledgement is awaited, so they travel together
    without a wait; a wait would only add up over the write paths' sequential steps. With
    aiokafka's common 5 ms, one batch's writes took 20.2 ms (p50) on Tansu's audit-first path
    and 12.5 ms in noida's transaction, against 3.3 and 3.0 ms without
    (``.venv/bin/python bench/_write_steps.py``, docs/performance.md)."""
    producer_batch_bytes: int = 256 * 1024
    reload_every_s: float = 2.0
    health_every_s: float = 5.0
    """How often the broker and the store are checked for the readiness probe (with metrics)."""
    start_at: str = "earliest"
    """Where a new group starts reading: every signal ever published ("earliest", the hub's
    setting) or only new ones ("latest", for measurements)."""
    audit_path: AuditPath = "transactional"
    """How a batch's audit records are made durable (see the module docstring): by default
    the log-first path of a broker with transactions, as the worker (``schakel router``,
    :func:`services.router.worker.audit_path_from_env`) defaults to it. On a broker without
    transactions (Tansu) pass ``audit-first``
    (:func:`services.router.worker.audit_path_for_broker` picks by capability, as ``schakel
    up`` does); on both log-first paths the audit indexer (:mod:`services.indexer`) writes the
    records into the store. ``sql`` is the explicit fallback: the loop writes its store."""

    @property
    def transactional_id(self) -> str:
        """One per worker instance: a restarted worker fences its predecessor's open
        transaction (aborts it) before it writes."""
        return f"{self.group_id}.{self.instance_id or 'single'}"


@dataclass
class LoopStats:
    batches: int = 0
    signals: int = 0
    delivered: int = 0
    withheld: int = 0
    dead_letters: int = 0
    last_batch_at: float = 0.0
    assigned: list[str] = field(default_factory=list)


class RouterLoop(BatchLoop):
    """One router worker's main loop; several in one group share the partitions."""

    def __init__(
        self,
        kafka: KafkaSettings,
        store: AuditStore,
        policies: PolicySource,
        config: LoopConfig,
        *,
        clock: Clock,
        metrics: RouterMetrics | None = None,
        crash_point: CrashPoint | None = None,
        open_tail: OpenTail | None = None,
    ) -> None:
        super().__init__()
        if config.audit_path not in AUDIT_PATHS:
            raise ValueError(
                f"unknown audit path {config.audit_path!r}. Fix: use one of "
                f"{', '.join(AUDIT_PATHS)}."
            )
        self._kafka = kafka
        self._store = store
        self._policies = policies
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._crash_point = crash_point
        self._open_tail = open_tail
        self._assigned: set[TopicPartition] = set()
        """The signal partitions the tail was last read to its end for."""
        self.tail: TailReader | None = None
        """What the audit log holds that the index may not (log-first paths; see
        :meth:`_screened`)."""
        self.stats = LoopStats()

    def instrument(self, metrics: RouterMetrics) -> None:
        """Report to ``metrics`` from now on (call before :meth:`run`)."""
        self._metrics = metrics

    async def start(self) -> None:
        kwargs = self._kafka.client_kwargs_aiokafka()
        transactional: dict[str, Any] = {}
        if self._config.audit_path == "transactional":
            transactional = {
                "transactional_id": self._config.transactional_id,
                "enable_idempotence": True,
            }
        self._producer = AIOKafkaProducer(
            acks="all",
            linger_ms=self._config.linger_ms,
            max_batch_size=self._config.producer_batch_bytes,
            partitioner=key_partitioner,  # Kafka's mapping, without aiokafka's slow murmur2
            **transactional,
            **kwargs,
        )
        self._consumer = AIOKafkaConsumer(
            *self._config.topics,
            group_id=self._config.group_id,
            group_instance_id=self._config.instance_id,
            enable_auto_commit=False,
            auto_offset_reset=self._config.start_at,
            max_poll_records=self._config.batch_max,
            session_timeout_ms=self._config.session_timeout_ms,
            heartbeat_interval_ms=self._config.heartbeat_interval_ms,
            rebalance_timeout_ms=self._config.rebalance_timeout_ms,
            max_poll_interval_ms=max(self._config.rebalance_timeout_ms, 20_000),
            **fetch_settings(self._config.fetch_max_wait_ms),
            **kwargs,
        )
        await self._producer.start()
        if self._config.audit_path != "sql":
            opened = self._open_tail or (lambda tail: kafka_tail_reader(self._kafka, tail))
            self.tail = opened(AuditTail())
            await self.tail.load()
        await self._consumer.start()
        hold_empty_fetches(self._consumer, self._config.fetch_max_wait_ms)

    async def stop(self, timeout: float = 30.0) -> None:
        await super().stop(timeout)
        if self.tail is not None:
            await self.tail.stop()

    async def run(self) -> None:
        """Process batches until :meth:`stop`; an unrecoverable error propagates uncommitted."""
        if self._consumer is None:
            raise RuntimeError("RouterLoop.run() before start()")
        loop = asyncio.get_running_loop()
        next_reload = loop.time() + self._config.reload_every_s
        self._idle.clear()
        watch = asyncio.create_task(self._watch()) if self._metrics is not None else None
        try:
            await self._run(loop, next_reload)
        finally:
            if watch is not None:
                watch.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watch
            self._idle.set()

    async def _watch(self) -> None:
        """Note when the broker answered and the store was readable (readiness probe)."""
        if self._metrics is None or self._consumer is None:
            return
        state = self._metrics.liveness
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._consumer.topics(), self._config.health_every_s)
                state.broker_ok = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - unreachable is what this check reports
                log.warning("broker check failed: %s", exc.__class__.__name__)
            try:
                await asyncio.to_thread(self._store.get, "-")  # an index look-up: store readable
                state.store_ok = time.monotonic()
            except Exception as exc:  # noqa: BLE001 - unreadable is what this check reports
                log.warning("audit store check failed: %s", exc.__class__.__name__)
            await asyncio.sleep(self._config.health_every_s)

    async def _run(self, loop: asyncio.AbstractEventLoop, next_reload: float) -> None:
        if self._consumer is None:
            raise RuntimeError("RouterLoop.run() before start()")
        while not self._stopping.is_set():
            batches = await self._consumer.getmany(
                timeout_ms=self._config.poll_timeout_ms, max_records=self._config.batch_max
            )
            if self._metrics is not None:
                self._metrics.polled(self._consumer.assignment())
            if self.tail is not None and self._consumer.assignment() != self._assigned:
                # other partitions: their previous owner's last decisions (logged, perhaps
                # never produced or committed) must be in the tail before they are read again
                self._assigned = set(self._consumer.assignment())
                await self.tail.catch_up()
            elif self.tail is not None:
                # take what other routers logged, idle or not: aiokafka fetches the audit
                # topic again only once its buffered records are taken, so a tail read only
                # when a batch comes would hold one stale fetch for as long as it is idle
                await self.tail.follow()
            if loop.time() >= next_reload:
                await asyncio.to_thread(self._policies.maybe_reload)
                if self.tail is not None:
                    await self.tail.evict()
                next_reload = loop.time() + self._config.reload_every_s
            if not batches:
                continue
            await self.process(batches)

    async def _screened(self, routed: RoutedBatch, now: datetime) -> Screened:
        """The batch without what re-sent or re-read signals must not change or produce again
        (services/router/resend.py): the batch's ids looked up in the store and, on a
        log-first path, in what the audit log holds beyond the index (the audit indexer's
        lag), so a signal decided before is never decided again, whatever the policy now."""
        decided = decided_ids(routed)
        if not decided:
            return Screened(routed, 0, 0)
        if self.tail is not None:
            await self.tail.follow()
            # what the tail's bound forgot must be in the index before the index is read
            await self.tail.until_complete()
        stored = await asyncio.to_thread(self._store.stored_records, decided)
        waiting = await asyncio.to_thread(self._store.unproduced, list(stored)) if stored else {}
        logged = {i: Logged(body, waiting.get(i)) for i, body in stored.items()}
        if self.tail is not None:
            for i, found in self.tail.tail.lookup(decided).items():
                before = logged.get(i)
                if before is None:
                    logged[i] = found
                elif found.copy is None:  # the log says the broker has it since
                    logged[i] = Logged(before.record)
        screened = screen_resends(routed, logged, now)
        if screened.conflicting:
            log.warning(
                "%d re-sent signal(s) with other content than decided before: dead-lettered as %s",
                screened.conflicting,
                CONFLICTING_RESEND,
            )
        return screened

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Decide, write and commit one poll's worth of records."""
        if self._consumer is None or self._producer is None:
            raise RuntimeError("RouterLoop.process() before start()")
        records = [
            Consumed(tp.topic, tp.partition, message.offset, message.value or b"")
            for tp, messages in batches.items()
            for message in messages
        ]
        current = self._policies.current
        now = self._clock()
        screened = await self._screened(
            route_batch(records, current.registry, current.policy, now), now
        )
        routed = screened.routed
        offsets = {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}
        started = time.perf_counter()
        path = self._config.audit_path
        if path == "transactional":
            await self._write_transactional(routed, offsets, now, screened.resent)
        elif path == "audit-first":
            await self._write_audit_first(routed, offsets, now)
        else:
            await self._write_sql(routed, offsets)
        written = time.perf_counter() - started
        self.stats.batches += 1
        self.stats.signals += routed.signals
        self.stats.delivered += routed.delivered
        self.stats.withheld += routed.withheld
        self.stats.dead_letters += len(routed.dead_letters)
        self.stats.last_batch_at = asyncio.get_running_loop().time()
        if self._metrics is not None:
            self._metrics.audit_written(written)
            dead_values = [letter.value for letter in routed.dead_letters]
            self._metrics.batch_done(batches, routed.audit, dead_values, self._highwater)

    def _highwater(self, tp: TopicPartition) -> int | None:
        """The partition's high water mark, or None once it is no longer ours (the group
        rebalanced while the batch was written: aiokafka asserts on an unassigned partition,
        and a metric must not crash the worker)."""
        consumer = self._consumer
        if consumer is None or tp not in consumer.assignment():
            return None
        mark: int | None = consumer.highwater(tp)
        return mark

    async def _send_feeds(self, routed: RoutedBatch) -> list[Any]:
        """Send the feed messages and dead letters; await every delivery report; return the
        feeds' record metadata (partition, offset) in outbox order."""
        producer = self._producer
        if producer is None:  # pragma: no cover - checked by process()
            raise RuntimeError("RouterLoop used before start()")
        sends = [
            await producer.send(feed_topic(entry.recipient), entry.value, key=entry.key)
            for entry in routed.outbox
        ]
        dead = [
            await producer.send(DEAD_LETTER, letter.value, key=letter.key)
            for letter in routed.dead_letters
        ]
        delivered = await asyncio.gather(*sends)
        await asyncio.gather(*dead)
        return list(delivered)

    async def _send_audit(self, messages: Sequence[bytes]) -> int:
        """Send ``messages`` to the audit topic, await their acknowledgement; the offset of
        the last (-1 for none). Their offsets are noted as this router's own."""
        producer = self._producer
        if producer is None:  # pragma: no cover - checked by process()
            raise RuntimeError("RouterLoop used before start()")
        # one partition: the indexer reads a batch's copies before their "produced" message
        sent = await asyncio.gather(*[await producer.send(AUDIT, m, partition=0) for m in messages])
        offsets = [int(meta.offset) for meta in sent]
        if self.tail is not None:
            self.tail.tail.own_offsets.update(offsets)
        return max(offsets, default=-1)

    def _logged(self, routed: RoutedBatch, upto: int) -> None:
        """Note the batch's decisions as logged (and their feeds acknowledged)."""
        if self.tail is not None and upto >= 0:
            self.tail.tail.add_own(upto, routed.audit)

    async def _write_transactional(
        self,
        routed: RoutedBatch,
        offsets: dict[TopicPartition, int],
        now: datetime,
        resent: Sequence[str] = (),
    ) -> None:
        producer, consumer = self._producer, self._consumer
        if producer is None or consumer is None:  # pragma: no cover - checked by process()
            raise RuntimeError("RouterLoop used before start()")
        await producer.begin_transaction()
        delivered = await self._send_feeds(routed)
        copies = [
            FeedCopy(
                entry.exchange_id, entry.recipient, entry.key, entry.value, m.partition, m.offset
            )
            for entry, m in zip(routed.outbox, delivered, strict=True)
        ]
        # a logged copy produced again is indexed already: say where it landed now
        again = set(resent)
        produced = [
            (entry.exchange_id, m.partition, m.offset)
            for entry, m in zip(routed.outbox, delivered, strict=True)
            if entry.exchange_id in again
        ]
        upto = await self._send_audit(
            encode(routed.audit, copies, now.isoformat(), produced=produced)
        )
        try:
            await producer.send_offsets_to_transaction(offsets, self._config.group_id)
        except CommitFailedError:
            await self._abort_and_rewind(offsets)
            return
        owned = consumer.assignment()
        if not all(tp in owned for tp in offsets):
            # aiokafka's TxnOffsetCommit (v0) carries no group generation, so a router whose
            # partitions were given away mid-batch is not refused by the broker: it must not
            # commit what the new owner reads again (narrows the window to this check)
            await self._abort_and_rewind(offsets)
            return
        self._crash("before-commit")
        await producer.commit_transaction()
        self._logged(routed, upto)

    async def _abort_and_rewind(self, offsets: dict[TopicPartition, int]) -> None:
        """The group rebalanced mid-batch: abort, and read the batch again if still ours."""
        producer, consumer = self._producer, self._consumer
        if producer is None or consumer is None:  # pragma: no cover - checked by process()
            raise RuntimeError("RouterLoop used before start()")
        log.warning("offsets refused after a rebalance; the batch is aborted and re-read")
        await producer.abort_transaction()
        owned = consumer.assignment()
        for tp in offsets:
            if tp in owned:
                committed = await consumer.committed(tp)
                consumer.seek(tp, committed or 0)

    async def _write_audit_first(
        self, routed: RoutedBatch, offsets: dict[TopicPartition, int], now: datetime
    ) -> None:
        at = now.isoformat()
        copies = [
            FeedCopy(entry.exchange_id, entry.recipient, entry.key, entry.value)
            for entry in routed.outbox
        ]
        logged = await self._send_audit(encode(routed.audit, copies, at))
        self._crash("audit-acked")
        delivered = await self._send_feeds(routed)
        produced = [
            (entry.exchange_id, meta.partition, meta.offset)
            for entry, meta in zip(routed.outbox, delivered, strict=True)
        ]
        acked = await self._send_audit(encode([], [], at, produced=produced))
        self._logged(routed, max(logged, acked))
        await self._commit(offsets)

    async def _write_sql(self, routed: RoutedBatch, offsets: dict[TopicPartition, int]) -> None:
        await asyncio.to_thread(self._store.record, routed.audit, routed.outbox)
        delivered = await self._send_feeds(routed)
        if routed.outbox:
            produced = [
                (entry.exchange_id, meta.partition, meta.offset)
                for entry, meta in zip(routed.outbox, delivered, strict=True)
            ]
            await asyncio.to_thread(self._store.mark_produced, produced)
        await self._commit(offsets)

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self._consumer is None:  # pragma: no cover - checked by process()
            raise RuntimeError("RouterLoop used before start()")
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # the group rebalanced mid-batch: the new owner re-reads these records, and the
            # ids make that harmless; nothing was lost, so carry on
            log.warning("offset commit refused after a rebalance; the batch will be re-read")

    def _crash(self, point: str) -> None:
        if self._crash_point is not None:
            self._crash_point(point)
