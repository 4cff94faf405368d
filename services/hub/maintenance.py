"""Keeping deliveries whole: what recipients consumed, and recovery when the broker lost data.

A broker can lose feed messages the audit store records as delivered: the memory-only Tansu
loses everything at a restart, noida the writes acknowledged since its last save when it is
killed (or the writes it acknowledges while saving at a stop). The audit store's feed outbox
knows every delivered message, where the broker put it (partition and offset) and which ones
recipients have consumed, so the hub re-delivers what the broker no longer holds instead of
silently writing into the void. Recipients drop duplicates by exchange id.

* :meth:`Maintenance.recover` — at start-up, *before* any router produces: create missing
  topics, then re-deliver every unconsumed entry the feed cannot hold (never marked produced,
  or at or past its partition's end offset — all of them when the topic was just created).
  Checked against offsets, so a persistent broker that kept everything re-delivers nothing.
* :meth:`Maintenance.tick` — while running: topics gone missing (recreate them and re-deliver
  every unconsumed entry), a re-delivery asked for (:meth:`Maintenance.request_redelivery`,
  e.g. after the hub restarted a broker that stopped answering), and consumption recorded.
  After a *persistent* broker restarted, only the entries whose message is no longer at its
  recorded partition and offset are re-delivered (:meth:`Maintenance.redeliver_missing`):
  noida keeps what it saved, so a kill must not re-send the whole unconsumed backlog.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer

from services.audit.model import AuditStore, OutboxEntry
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin, missing_topics
from services.hub.feed_check import missing_from_feed
from services.router.topics import FEED_PREFIX, consumption_groups, feed_topic, topic_configs

log = logging.getLogger("schakel.hub")


@dataclass
class MaintenanceReport:
    recreated: list[str]
    """Topics the broker did not have and that were created in this tick (or recovery)."""
    redelivered: int
    consumed: int
    redelivered_by_topic: dict[str, int] = field(default_factory=dict)
    """Feed topic → messages produced again in this tick (names only, never an identifier)."""
    verified: bool = False
    """This tick checked the feed message by message (:meth:`Maintenance.redeliver_missing`)
    and ``redelivered`` is what it found missing."""


class Maintenance:
    """One tick: detect lost topics (recreate + re-deliver), then record consumption.

    A re-delivery that fails part-way (the broker went away again, a timeout) is retried on
    every following tick of this instance until it succeeds, although the topics exist by then.
    Two instances running at once both re-deliver: recipients get duplicates, which they drop
    by exchange id.
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        store: AuditStore,
        spec: Mapping[str, int],
        recipients: Iterable[str],
    ) -> None:
        self._kafka = kafka
        self._store = store
        self._spec = dict(spec)
        self._configs = topic_configs(self._spec)
        self._recipients = sorted(recipients)
        self._redeliver_pending = False
        self._verify = False
        self._last_redelivery: Counter[str] = Counter()
        self._created_early: list[str] = []

    @property
    def recipients(self) -> list[str]:
        return list(self._recipients)

    def request_redelivery(self, *, verify: bool = False) -> None:
        """Re-deliver every unconsumed entry at the next tick, topics lost or not (after a
        re-delivery was cut short, or topics were recreated by someone else); with
        ``verify`` (a persistent broker was restarted) only those the feed no longer holds
        at their recorded place (:meth:`redeliver_missing`)."""
        self._redeliver_pending = True
        self._verify = verify

    def tick(self) -> MaintenanceReport:
        with KafkaTopicAdmin(self._kafka) as admin:
            lost = missing_topics(admin, self._spec)
            redelivered = 0
            if lost:
                log.warning("broker lost %d topic(s); recreating and re-delivering", len(lost))
                admin.ensure_topics(self._spec, self._configs)
                if any(t.startswith(FEED_PREFIX) for t in lost):
                    self._redeliver_pending, self._verify = True, False
            verified = self._redeliver_pending and self._verify
            if self._redeliver_pending:
                redelivered = self.redeliver_missing() if verified else self.redeliver()
                self._redeliver_pending = False
        by_topic = dict(self._last_redelivery) if redelivered else {}
        consumed = self.record_consumption()
        return MaintenanceReport(lost, redelivered, consumed, by_topic, verified=verified)

    def ensure_topics(self) -> list[str]:
        """Create the declared topics the broker lacks; return their names."""
        with KafkaTopicAdmin(self._kafka) as admin:
            created = admin.ensure_topics(self._spec, self._configs)
        self._created_early = created
        return created

    def recover(self, limit: int = 1_000_000) -> MaintenanceReport:
        """Create missing topics, then re-deliver the unconsumed feed messages the broker no
        longer holds (see the module docstring); run it before routers start producing."""
        with KafkaTopicAdmin(self._kafka) as admin:
            created = [*self._created_early, *admin.ensure_topics(self._spec, self._configs)]
            self._created_early = []
            lost = []
            for recipient in self._recipients:
                ends = admin.end_offsets(feed_topic(recipient))
                lost += self._store.unconsumed_outside(recipient, ends, limit=limit)
        if lost:
            log.warning(
                "the broker does not hold %d unconsumed feed message(s) the audit store "
                "recorded as delivered; re-delivering them",
                len(lost),
            )
        self._last_redelivery = Counter()
        redelivered = self._produce(lost[:limit])
        by_topic = dict(self._last_redelivery) if redelivered else {}
        return MaintenanceReport(created, redelivered, 0, by_topic)

    def redeliver(self, limit: int = 1_000_000) -> int:
        """Produce every outbox entry not yet consumed again, and record where it went."""
        self._last_redelivery = Counter()
        return self._produce(self._store.undelivered(limit=limit))

    def redeliver_missing(self, limit: int = 1_000_000) -> int:
        """Produce again only the unconsumed entries the feed does not hold where the broker
        put them (:func:`services.hub.feed_check.missing_from_feed`): after a persistent
        broker restarted, what it lost, not the whole backlog."""
        self._last_redelivery = Counter()
        missing: list[OutboxEntry] = []
        with KafkaTopicAdmin(self._kafka) as admin:
            for recipient in self._recipients:
                entries = self._store.undelivered(recipient, limit=limit)
                if entries:
                    ends = admin.end_offsets(feed_topic(recipient))
                    missing += missing_from_feed(self._kafka, recipient, entries, ends)
        if missing:
            log.warning(
                "the broker no longer holds %d unconsumed feed message(s) at their recorded "
                "place; re-delivering them",
                len(missing),
            )
        return self._produce(missing[:limit])

    def _produce(self, entries: list[OutboxEntry]) -> int:
        if not entries:
            return 0
        producer = KafkaProducer(
            acks="all", linger_ms=5, **self._kafka.client_kwargs_kafka_python()
        )
        try:
            futures = [
                (e.exchange_id, producer.send(feed_topic(e.recipient), value=e.value, key=e.key))
                for e in entries
            ]
            produced = []
            for exchange_id, future in futures:
                meta = future.get(timeout=30)
                produced.append((exchange_id, meta.partition, meta.offset))
            self._store.mark_produced(produced)
            self._last_redelivery = Counter(feed_topic(e.recipient) for e in entries)
        finally:
            producer.close(timeout=10)
        log.warning("re-delivered %d feed message(s) after broker data loss", len(produced))
        return len(produced)

    def record_consumption(self) -> int:
        """Mark outbox entries below a committed offset of one of each recipient's groups
        (its own Kafka client's, the gateway's for its HTTP reads) as consumed."""
        admin = KafkaAdminClient(**self._kafka.client_kwargs_kafka_python())
        marked = 0
        try:
            for recipient in self._recipients:
                for group in consumption_groups(recipient):
                    answer: Mapping[str, Mapping[Any, Any]] = admin.list_group_offsets([group])
                    for tp, meta in answer.get(group, {}).items():
                        if (
                            tp.topic == feed_topic(recipient)
                            and meta.offset is not None
                            and meta.offset >= 0
                        ):
                            marked += self._store.mark_consumed(
                                recipient, tp.partition, meta.offset
                            )
        finally:
            admin.close()
        return marked
