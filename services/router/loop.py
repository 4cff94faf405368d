"""The router's consume → decide → store → produce → commit loop (aiokafka, batched).

Why not one Faust agent per message: Faust's per-message machinery costs ~60 µs of CPU per
input on top of aiokafka, several times the policy itself (docs/architecture.md). Faust stays
the application framework — app, lifecycle, worker, web — and hosts this loop as a service.

Ordering per batch is what makes a crash at any moment lose nothing:

1. decide the batch (pure, :func:`services.router.batch.route_batch`);
2. write audit records and the feed outbox in one transaction (idempotent by id);
3. produce feed messages and dead letters and **await every delivery report**;
4. record the produced offsets, then commit the source offsets.

A crash before 4 means the batch is consumed again; deterministic exchange ids make the
store skip what it has, and recipients drop duplicate messages by exchange id. Any error in
2-3 stops the loop *without* committing, so nothing is acknowledged that was not written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from services.audit.model import AuditStore
from services.broker.batch_loop import BatchLoop
from services.broker.settings import KafkaSettings
from services.router.batch import Consumed, RoutedBatch, route_batch
from services.router.policy_source import PolicySource
from services.router.resend import CONFLICTING_RESEND, decided_ids, screen_resends
from services.router.topics import DEAD_LETTER, feed_topic

if TYPE_CHECKING:
    from services.metrics.router import RouterMetrics

log = logging.getLogger("schakel.router")

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class LoopConfig:
    topics: Sequence[str]
    group_id: str = "schakel-router"
    instance_id: str | None = None
    """Static group membership (KIP-345): a worker restarted after a crash takes over its own
    old membership at once instead of waiting for the group to expire it."""
    batch_max: int = 500
    poll_timeout_ms: int = 200
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    rebalance_timeout_ms: int = 20_000
    """How long a rebalance waits for members that have not rejoined (Kafka's default is
    max.poll.interval.ms, 5 minutes): a worker killed with SIGKILL must not stall the group."""
    linger_ms: int = 5
    producer_batch_bytes: int = 256 * 1024
    reload_every_s: float = 2.0
    health_every_s: float = 5.0
    """How often the broker and the store are checked for the readiness probe (with metrics)."""
    start_at: str = "earliest"
    """Where a new group starts reading: every signal ever published ("earliest", the hub's
    setting) or only new ones ("latest", for measurements)."""


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
    ) -> None:
        super().__init__()
        self._kafka = kafka
        self._store = store
        self._policies = policies
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self.stats = LoopStats()

    def instrument(self, metrics: RouterMetrics) -> None:
        """Report to ``metrics`` from now on (call before :meth:`run`)."""
        self._metrics = metrics

    async def start(self) -> None:
        kwargs = self._kafka.client_kwargs_aiokafka()
        self._producer = AIOKafkaProducer(
            acks="all",
            linger_ms=self._config.linger_ms,
            max_batch_size=self._config.producer_batch_bytes,
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
            **kwargs,
        )
        await self._producer.start()
        await self._consumer.start()

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
            if loop.time() >= next_reload:
                await asyncio.to_thread(self._policies.maybe_reload)
                next_reload = loop.time() + self._config.reload_every_s
            if not batches:
                continue
            await self.process(batches)

    async def _screened(self, routed: RoutedBatch, now: datetime) -> RoutedBatch:
        """The batch without what re-sent signals must not change or produce again
        (services/router/resend.py: one look-up of the batch's ids in the store)."""
        decided = decided_ids(routed)
        stored = await asyncio.to_thread(self._store.stored_records, decided) if decided else {}
        if not stored:
            return routed
        unproduced = await asyncio.to_thread(self._store.unproduced, list(stored))
        screened = screen_resends(routed, stored, unproduced, now)
        if screened.conflicting:
            log.warning(
                "%d re-sent signal(s) with other content than decided before: dead-lettered as %s",
                screened.conflicting,
                CONFLICTING_RESEND,
            )
        return screened.routed

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        """Decide, store, produce and commit one poll's worth of records."""
        if self._consumer is None or self._producer is None:
            raise RuntimeError("RouterLoop.process() before start()")
        records = [
            Consumed(tp.topic, tp.partition, message.offset, message.value or b"")
            for tp, messages in batches.items()
            for message in messages
        ]
        current = self._policies.current
        now = self._clock()
        routed = await self._screened(
            route_batch(records, current.registry, current.policy, now), now
        )
        started = time.perf_counter()
        await asyncio.to_thread(self._store.record, routed.audit, routed.outbox)
        written = time.perf_counter() - started
        sends = [
            await self._producer.send(feed_topic(entry.recipient), entry.value, key=entry.key)
            for entry in routed.outbox
        ]
        dead = [
            await self._producer.send(DEAD_LETTER, letter.value, key=letter.key)
            for letter in routed.dead_letters
        ]
        delivered = await asyncio.gather(*sends)
        await asyncio.gather(*dead)
        if routed.outbox:
            produced = [
                (entry.exchange_id, meta.partition, meta.offset)
                for entry, meta in zip(routed.outbox, delivered, strict=True)
            ]
            await asyncio.to_thread(self._store.mark_produced, produced)
        offsets = {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            # the group rebalanced mid-batch: the new owner re-reads these records, and the
            # ids make that harmless; nothing was lost, so carry on
            log.warning("offset commit refused after a rebalance; the batch will be re-read")
        self.stats.batches += 1
        self.stats.signals += routed.signals
        self.stats.delivered += routed.delivered
        self.stats.withheld += routed.withheld
        self.stats.dead_letters += len(routed.dead_letters)
        self.stats.last_batch_at = asyncio.get_running_loop().time()
        if self._metrics is not None:
            self._metrics.audit_written(written)
            dead_values = [letter.value for letter in routed.dead_letters]
            self._metrics.batch_done(batches, routed.audit, dead_values, self._consumer.highwater)
