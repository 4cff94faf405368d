"""The RIEC workplace's feed reader: consume each RIEC party's feed, store what it delivered as
workplace items, then commit.

Its own consumer group (``schakel-riec-workplace``) reads ``feed.<riec>`` for every party of
kind ``riec`` in the covenants in force; the recipient's own consumers and the gateway keep
their groups. Items are written before offsets are committed and are idempotent by exchange
id, so a crash re-reads a batch that changes nothing. A message that is not a feed message
(bad JSON, missing fields) is logged by topic and offset — never its content — and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer

from services.broker.aborted import drop_ended_aborts
from services.broker.fetching import BACKGROUND_WAIT_MS, fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.riec.items import Locate
from services.riec.model import RiecError
from services.riec.retention import Purged, purge
from services.riec.workplace import Workplace
from services.router.topics import FEED_PREFIX, feed_topic

log = logging.getLogger("schakel.riec")

GROUP = "schakel-riec-workplace"
PURGE_EVERY_S = 3600.0
"""How often the reader purges what is past its retention (services/riec/retention.py)."""
FLUSH_EVERY_S = 30.0
"""How often the reader writes the workplace's staged audit records the audit store refused
before (services/riec/audit_outbox.py); it also does so once when it starts."""
CLOSE_TIMEOUT_S = 10.0
POLL_LIMIT_S = 2.0


class FeedReader:
    """Reads the feeds of ``recipients`` into ``workplace``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        workplace: Workplace,
        locate: Locate,
        recipients: Sequence[str],
        *,
        group_id: str = GROUP,
        batch_max: int = 1000,
        purge_every_s: float = PURGE_EVERY_S,
        flush_every_s: float = FLUSH_EVERY_S,
    ) -> None:
        self._kafka = kafka
        self._workplace = workplace
        self._locate = locate
        self.topics = [feed_topic(r) for r in recipients]
        self._group_id = group_id
        self._batch_max = batch_max
        self._purge_every_s = purge_every_s
        self._purged_at = float("-inf")
        self._flush_every_s = flush_every_s
        self._flushed_at = float("-inf")
        self.stored = 0
        self.skipped = 0
        self.purged = Purged(0, 0)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the batch in hand is stored and committed first."""
        consumer = AIOKafkaConsumer(
            *self.topics,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # feed messages of a router transaction that never committed are no deliveries
            isolation_level="read_committed",
            max_poll_records=self._batch_max,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            **fetch_settings(BACKGROUND_WAIT_MS),
            **self._kafka.client_kwargs_aiokafka(),
        )
        await consumer.start()
        hold_empty_fetches(consumer, BACKGROUND_WAIT_MS)
        drop_ended_aborts(consumer)  # noida lists aborts long ended
        try:
            while not stop.is_set():
                try:
                    batch = await asyncio.wait_for(
                        consumer.getmany(timeout_ms=300, max_records=self._batch_max), POLL_LIMIT_S
                    )
                except TimeoutError:
                    continue
                found = [
                    (tp.topic, m.offset, m.value)
                    for tp, messages in batch.items()
                    for m in messages
                    if m.value
                ]
                if found:
                    await asyncio.to_thread(self.store, found)
                if batch:
                    await consumer.commit()
                if time.monotonic() - self._flushed_at >= self._flush_every_s:
                    self._flushed_at = time.monotonic()  # the first pass: at start
                    await asyncio.to_thread(self._workplace.flush_audit)
                if time.monotonic() - self._purged_at >= self._purge_every_s:
                    self._purged_at = time.monotonic()
                    self.purged = await asyncio.to_thread(
                        purge, self._workplace, self._workplace.now()
                    )
        finally:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(consumer.stop(), CLOSE_TIMEOUT_S)

    def store(self, found: Sequence[tuple[str, int, bytes]]) -> int:
        """Store one batch of ``(topic, offset, value)``; returns how many items were new."""
        new = 0
        for topic, offset, value in found:
            recipient = topic.removeprefix(FEED_PREFIX)
            try:
                message = orjson.loads(value)
                if not isinstance(message, dict):
                    raise RiecError("not a JSON object")
                new += self._workplace.receive(recipient, [message], self._locate)
            except (orjson.JSONDecodeError, RiecError) as error:
                reason = str(error).split(".")[0] if isinstance(error, RiecError) else "not JSON"
                log.warning("skipped %s offset %d: %s", topic, offset, reason)
                self.skipped += 1
        self.stored += new
        return new


def run_worker() -> None:
    """Run the feed reader with the hub's configuration until SIGTERM or SIGINT."""
    from services.hub.state import client_settings  # noqa: PLC0415 - the hub's files here
    from services.riec.wiring import hub_workplace  # noqa: PLC0415

    built = hub_workplace()
    workplace = built.cases.workplace
    reader = FeedReader(client_settings(), workplace, built.locate, sorted(workplace.regions))

    async def main() -> None:
        stop = asyncio.Event()
        running = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            running.add_signal_handler(sig, stop.set)
        await reader.run(stop)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.info("RIEC workplace: reading %s", ", ".join(reader.topics))
    try:
        asyncio.run(main())
    finally:
        built.close()
        log.info(
            "RIEC workplace reader stopped at %s: %d stored, %d skipped",
            datetime.now(UTC).isoformat(), reader.stored, reader.skipped,
        )  # fmt: skip
