"""The stacking worker's loop: consume → stack → audit → store → publish alerts → commit.

Ordering per batch is what makes a crash lose nothing:

1. stack the batch (pure, :class:`services.stacking.batch.StackingStep`);
2. write the stacking-use audit records (idempotent by record id);
3. write evidence, aliases and alerts in one transaction (replayed evidence is skipped);
4. publish every alert revision not yet published onto the hub's signals topic and **await
   the broker's acknowledgement**, then mark them published;
5. commit the source offsets.

A crash before 5 re-reads the batch: the evidence is already stored, so nothing new is
raised, and unpublished alerts are published at start-up. Alert signal ids are deterministic,
so a revision published twice is one exchange to the router and its audit.
An error in 2-4 stops the loop without committing; the supervisor restarts the worker, which
reloads its state from the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import CommitFailedError

from services.audit.model import AuditStore
from services.broker.aborted import drop_ended_aborts
from services.broker.batch_loop import BatchLoop
from services.broker.fetching import SIDE_PATH_WAIT_MS, fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.core.pseudonyms import Pseudonymiser
from services.core.stacking.alerts import Alert, alert_envelope
from services.core.stacking.config import StackingConfig
from services.core.stacking.evidence import LOCATOR
from services.router.topics import signals_topic
from services.stacking.batch import Record, StackingStep
from services.stacking.model import StackingStore

log = logging.getLogger("schakel.stacking")

Clock = Callable[[], datetime]
Signer = Callable[[Mapping[str, Any]], dict[str, Any]]
"""Signs an alert envelope as the alert source party (covenants may require signatures)."""
GROUP = "schakel-stacking"


@dataclass(frozen=True)
class StackingLoopConfig:
    topics: Sequence[str]
    group_id: str = GROUP
    batch_max: int = 1000
    poll_timeout_ms: int = 200
    fetch_max_wait_ms: int = SIDE_PATH_WAIT_MS
    """Alerts go back through the router, so this wait adds to an alert's latency too."""
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 2_000
    start_at: str = "earliest"


@dataclass
class StackingStats:
    batches: int = 0
    signals: int = 0
    used: int = 0
    alerts_published: int = 0


def alert_message(
    alert: Alert,
    config: StackingConfig,
    pseudonymiser: Pseudonymiser,
    sign: Signer | None = None,
) -> bytes | None:
    """The alert signal as published, or None when the location has no address or BAG id."""
    if alert.locator is None:
        return None
    kind, value = pseudonymiser.reidentify(LOCATOR, alert.locator)
    envelope = alert_envelope(
        alert, source=config.alert.source, signal_type=config.alert.type, kind=kind, value=value
    )
    return orjson.dumps(sign(envelope) if sign is not None else envelope)


class StackingLoop(BatchLoop):
    """The one stacking worker (evidence of one location comes from many topics, so the
    state is not partitioned: run a single instance)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        store: StackingStore,
        audit: AuditStore,
        step: StackingStep,
        config: StackingConfig,
        pseudonymiser: Pseudonymiser,
        loop_config: StackingLoopConfig,
        *,
        clock: Clock,
        sign: Signer | None = None,
    ) -> None:
        super().__init__()
        self._sign = sign
        self._kafka = kafka
        self._store = store
        self._audit = audit
        self._step = step
        self._config = config
        self._pseudonymiser = pseudonymiser
        self._loop_config = loop_config
        self._clock = clock
        self.stats = StackingStats()

    @property
    def alerts_topic(self) -> str:
        return signals_topic(self._config.alert.source)

    async def start(self) -> None:
        kwargs = self._kafka.client_kwargs_aiokafka()
        self._producer = AIOKafkaProducer(acks="all", linger_ms=5, **kwargs)
        self._consumer = AIOKafkaConsumer(
            *self._loop_config.topics,
            group_id=self._loop_config.group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._loop_config.start_at,
            isolation_level="read_committed",
            max_poll_records=self._loop_config.batch_max,
            session_timeout_ms=self._loop_config.session_timeout_ms,
            heartbeat_interval_ms=self._loop_config.heartbeat_interval_ms,
            **fetch_settings(self._loop_config.fetch_max_wait_ms),
            **kwargs,
        )
        await self._producer.start()
        await self._consumer.start()
        # beside the router on the same cores: no spinning on a broker that answers at once
        hold_empty_fetches(self._consumer, self._loop_config.fetch_max_wait_ms)
        drop_ended_aborts(self._consumer)  # noida lists aborts long ended

    async def run(self) -> None:
        """Publish what a previous run left unpublished, then process batches until stop()."""
        if self._consumer is None:
            raise RuntimeError("StackingLoop.run() before start()")
        self._idle.clear()
        try:
            await self.publish_pending()
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=self._loop_config.poll_timeout_ms,
                    max_records=self._loop_config.batch_max,
                )
                if batches:
                    await self.process(batches)
        finally:
            self._idle.set()

    async def process(self, batches: dict[TopicPartition, list[Any]]) -> None:
        if self._consumer is None:
            raise RuntimeError("StackingLoop.process() before start()")
        records = [
            Record(tp.topic, message.value or b"")
            for tp, messages in batches.items()
            for message in messages
        ]
        stacked = self._step.run(records, self._clock())
        if stacked.audit:
            await asyncio.to_thread(self._audit.record, stacked.audit, [])
        await asyncio.to_thread(self._store.write, stacked.changes)
        if stacked.changes.alerts:
            await self.publish_pending()
        offsets = {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError:
            log.warning("offset commit refused after a rebalance; the batch will be re-read")
        self.stats.batches += 1
        self.stats.signals += stacked.signals
        self.stats.used += stacked.used

    async def publish_pending(self) -> None:
        """Publish every unpublished alert revision, await the acks, then mark them."""
        if self._producer is None:
            raise RuntimeError("StackingLoop.publish_pending() before start()")
        pending = await asyncio.to_thread(self._store.unpublished)
        if not pending:
            return
        sends = []
        done: list[Alert] = []
        for alert in pending:
            message = alert_message(alert, self._config, self._pseudonymiser, self._sign)
            if message is None:
                log.warning(
                    "alert %s names no address or BAG id and cannot be published", alert.alert_id
                )
            else:
                sends.append(
                    await self._producer.send(
                        self.alerts_topic, message, key=alert.alert_id.encode()
                    )
                )
            done.append(alert)
        await asyncio.gather(*sends)
        await asyncio.to_thread(self._store.mark_published, done)
        self.stats.alerts_published += len(sends)
        log.info("published %d stacked-location alert(s)", len(sends))
