"""The outcomes worker's loop: consume → extract → store → decide returns → audit and outbox →
produce → commit.

Ordering per batch is what makes a crash lose nothing and repeat nothing:

1. extract the batch's entries (pure) and write them to the outcome store (idempotent);
2. decide the returns from the stored state (deterministic ids);
3. write the matching and return audit records and the returns' outbox entries in one
   transaction (idempotent by id);
4. produce the returns to ``feed.<recipient>`` and **await every acknowledgement**, note the
   offsets, then commit the source offsets.

A crash before 4 re-reads the batch: the entries are already stored, the same pairs are
decided under the same ids, the audit store skips what it has, and recipients drop a message
they got twice by its exchange id. Run **one** outcomes worker: it is the single writer of the
index (a signal and its outcome arrive on different topics).

When the hub received a record (:func:`receipt`) decides which signals an outcome answers.
The ``signals.*`` topics are LogAppendTime, so on Apache Kafka and noida (which honour it) it
is the broker's append time, exact whoever produced the record. Tansu 0.6.0 ignores the
setting and hands back the producer's CreateTime, which a partner producing to Kafka directly
can backdate; the worker then counts a signal received when it read it and an outcome or
approval no later than that, so a backdated signal is never answered by an earlier outcome,
and a signal read only after the outcome was sent is not answered either (docs/outcomes.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from services.audit.model import AuditStore, OutboxEntry
from services.broker.batch_loop import BatchLoop
from services.broker.fetching import BACKGROUND_WAIT_MS, fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.core.pseudonyms import Pseudonymiser
from services.outcomes.batch import OutcomeStep, Record
from services.outcomes.store import OutcomeStore
from services.router.policy_source import PolicySource
from services.router.topics import feed_topic

log = logging.getLogger("schakel.outcomes")

Clock = Callable[[], datetime]
GROUP = "schakel-outcomes"


@dataclass(frozen=True)
class OutcomeLoopConfig:
    topics: Sequence[str]
    group_id: str = GROUP
    batch_max: int = 1000
    poll_timeout_ms: int = 200
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    start_at: str = "earliest"
    purge_every_s: float = 3600.0


@dataclass
class OutcomeStats:
    batches: int = 0
    signals: int = 0
    indexed: int = 0
    outcomes: int = 0
    approvals: int = 0
    delivered: int = 0
    held: int = 0
    withheld: int = 0
    purged: int = 0


LOG_APPEND_TIME = 1
"""A Kafka record's ``timestamp_type`` when the broker stamped it on appending it."""


def stamped(timestamp_ms: int | None) -> datetime | None:
    """The moment a Kafka record timestamp names (None when the broker gave none)."""
    if timestamp_ms is None or timestamp_ms <= 0:
        return None
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def receipt(topic: str, message: Any, read: datetime) -> Record:
    """The record the step decides, with what the hub knows of when it received it.

    The ``signals.*`` topics are created with ``message.timestamp.type=LogAppendTime``
    (:data:`services.router.topics.RECEIPT_TIME`), so on a broker that honours it (Apache
    Kafka, noida) every record says ``timestamp_type`` 1 and its timestamp is the broker's
    append time: the hub's receipt time, whoever produced it. A record that says
    ``timestamp_type`` 0 carries its producer's CreateTime — a broker that ignores the config
    (Tansu 0.6.0), or a record appended before the config was set — which a partner producing
    to Kafka directly can backdate; it is then only a claim, bounded by ``read``, the moment
    the worker read it (:meth:`Record.received`)."""
    moment = stamped(message.timestamp)
    if getattr(message, "timestamp_type", None) == LOG_APPEND_TIME and moment is not None:
        return Record(topic, message.value or b"", moment)
    return Record(topic, message.value or b"", claimed=moment, read=read)


class OutcomeLoop(BatchLoop):
    """The one outcomes worker."""

    def __init__(
        self,
        kafka: KafkaSettings,
        store: OutcomeStore,
        audit: AuditStore,
        policies: PolicySource,
        pseudonymiser: Pseudonymiser,
        config: OutcomeLoopConfig,
        *,
        clock: Clock,
        wall: Clock = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self._kafka = kafka
        self._store = store
        self._audit = audit
        self._policies = policies
        self._pseudonymiser = pseudonymiser
        self._config = config
        self._clock = clock
        self._wall = wall
        """The real clock records are read by (``clock`` may be a demo's or a test's)."""
        self._step: OutcomeStep | None = None
        self.stats = OutcomeStats()

    def step(self) -> OutcomeStep:
        """The step under the policy in force (rebuilt when the covenants changed)."""
        self._policies.maybe_reload()
        current = self._policies.current
        if self._step is None or self._step.policy is not current.policy:
            self._step = OutcomeStep.build(current.registry, current.policy, self._pseudonymiser)
        return self._step

    async def start(self) -> None:
        kwargs = self._kafka.client_kwargs_aiokafka()
        self._producer = AIOKafkaProducer(acks="all", linger_ms=5, **kwargs)
        self._consumer = AIOKafkaConsumer(
            *self._config.topics,
            group_id=self._config.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._config.start_at,
            max_poll_records=self._config.batch_max,
            session_timeout_ms=self._config.session_timeout_ms,
            heartbeat_interval_ms=self._config.heartbeat_interval_ms,
            **fetch_settings(BACKGROUND_WAIT_MS),
            **kwargs,
        )
        await self._producer.start()
        await self._consumer.start()
        hold_empty_fetches(self._consumer, BACKGROUND_WAIT_MS)

    async def run(self) -> None:
        if self._consumer is None:
            raise RuntimeError("OutcomeLoop.run() before start()")
        self._idle.clear()
        next_purge = time.monotonic()
        try:
            while not self._stopping.is_set():
                if time.monotonic() >= next_purge:
                    purged = await asyncio.to_thread(self._store.purge, self._clock())
                    self.stats.purged += purged.signals + purged.outcomes + purged.approvals
                    next_purge = time.monotonic() + self._config.purge_every_s
                batches = await self._consumer.getmany(
                    timeout_ms=self._config.poll_timeout_ms, max_records=self._config.batch_max
                )
                if batches:
                    await self.process(batches)
        finally:
            self._idle.set()

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        if self._consumer is None or self._producer is None:
            raise RuntimeError("OutcomeLoop.process() before start()")
        read = self._wall()
        records = [
            receipt(tp.topic, message, read)
            for tp, messages in batches.items()
            for message in messages
        ]
        now = self._clock()
        step = await asyncio.to_thread(self.step)
        extracted = await asyncio.to_thread(step.extract, records, now)
        await asyncio.to_thread(self._store.write, extracted.entries)
        returns = await asyncio.to_thread(step.decide, extracted.entries, self._store, now)
        outbox = [
            OutboxEntry(item.exchange_id, item.recipient, item.key, item.value, now)
            for item in returns.feed
        ]
        audit = extracted.audit + returns.audit
        if audit or outbox:
            await asyncio.to_thread(self._audit.record, audit, outbox)
        sends = [
            await self._producer.send(feed_topic(e.recipient), e.value, key=e.key) for e in outbox
        ]
        delivered = await asyncio.gather(*sends)
        if outbox:
            produced = [
                (entry.exchange_id, meta.partition, meta.offset)
                for entry, meta in zip(outbox, delivered, strict=True)
            ]
            await asyncio.to_thread(self._audit.mark_produced, produced)
        offsets = {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            log.warning("offset commit refused after a rebalance; the batch will be re-read")
        entries = extracted.entries
        self.stats.batches += 1
        self.stats.signals += extracted.signals
        self.stats.indexed += len(entries.signals)
        self.stats.outcomes += len(entries.outcomes)
        self.stats.approvals += len(entries.approvals)
        self.stats.delivered += returns.delivered
        self.stats.held += returns.held
        self.stats.withheld += returns.withheld
