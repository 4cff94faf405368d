"""The router's metrics: what came in, what was decided, how fast, and whether it is alive.

:class:`RouterMetrics` registers its collectors on the registry it is given (never the global
default one) and is fed by :class:`services.router.loop.RouterLoop` once per poll and once
per batch. Label values are names only (:mod:`services.metrics.labels`).

=============================================  ============================================
``schakel_signals_in_total``                   consumed signals {partner, type}; rejected
                                               ones have type ``invalid``
``schakel_decisions_total``                    decisions {covenant, rule, recipient, result}
``schakel_withheld_total``                     withheld decisions {covenant, recipient, reason}
``schakel_dead_letters_total``                 dead letters {partner, reason}
``schakel_publish_to_feed_seconds``            partner publish (record timestamp) until the
                                               batch's feed messages were acknowledged
``schakel_audit_write_seconds``                one batch's audit + outbox transaction
``schakel_router_batches_total``               batches processed
``schakel_consumer_assigned_partitions``       partitions this worker owns
``schakel_consumer_last_poll_timestamp_seconds``  {topic, partition}: last poll while owned
``schakel_consumer_last_commit_timestamp_seconds``  {topic, partition}: last offset commit
``schakel_consumer_lag``                       {topic, partition}: records behind high water
=============================================  ============================================
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.metrics.labels import rejection_code, safe, withheld_reason_of

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
WRITE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INVALID_TYPE = "invalid"


class PartitionLike(Protocol):
    """aiokafka's TopicPartition (a named tuple)."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class RecordLike(Protocol):
    """The parts of a consumed record the metrics read (aiokafka's ConsumerRecord)."""

    @property
    def offset(self) -> int: ...

    @property
    def timestamp(self) -> int: ...


@dataclass
class Liveness:
    """What the loop last managed to do, in ``time.monotonic()`` seconds (0: never)."""

    last_poll: float = 0.0
    broker_ok: float = 0.0
    store_ok: float = 0.0
    assigned: int = 0


class RouterMetrics:
    """The router's collectors on ``registry``, and its liveness state for health checks."""

    def __init__(
        self, registry: CollectorRegistry, *, wall: Callable[[], float] = time.time
    ) -> None:
        self._wall = wall
        self.liveness = Liveness()
        self.signals_in = Counter(
            "schakel_signals_in", "Signals consumed", ["partner", "type"], registry=registry
        )
        self.decisions = Counter(
            "schakel_decisions",
            "Decisions made",
            ["covenant", "rule", "recipient", "result"],
            registry=registry,
        )
        self.withheld = Counter(
            "schakel_withheld",
            "Withheld decisions by reason",
            ["covenant", "recipient", "reason"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "schakel_dead_letters",
            "Signals dead-lettered",
            ["partner", "reason"],
            registry=registry,
        )
        self.publish_to_feed = Histogram(
            "schakel_publish_to_feed_seconds",
            "From the partner's publish to the acknowledged feed messages of its batch",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.audit_write = Histogram(
            "schakel_audit_write_seconds",
            "One batch's audit records and outbox in one transaction",
            buckets=WRITE_BUCKETS,
            registry=registry,
        )
        self.batches = Counter("schakel_router_batches", "Batches processed", registry=registry)
        self.assigned = Gauge(
            "schakel_consumer_assigned_partitions",
            "Partitions assigned to this worker",
            registry=registry,
        )
        self.last_poll = Gauge(
            "schakel_consumer_last_poll_timestamp_seconds",
            "Last poll of the broker while this worker owned the partition (Unix time)",
            ["topic", "partition"],
            registry=registry,
        )
        self.last_commit = Gauge(
            "schakel_consumer_last_commit_timestamp_seconds",
            "Last offset commit for the partition (Unix time)",
            ["topic", "partition"],
            registry=registry,
        )
        self.lag = Gauge(
            "schakel_consumer_lag",
            "Records between the committed offset and the partition's high water mark",
            ["topic", "partition"],
            registry=registry,
        )
        self._owned: set[tuple[str, str]] = set()

    def polled(self, assignment: Iterable[PartitionLike]) -> None:
        """A poll returned (with or without records); ``assignment`` is what the worker owns."""
        self.liveness.last_poll = time.monotonic()
        now = self._wall()
        owned = {(safe(tp.topic), str(tp.partition)) for tp in assignment}
        for labels in self._owned - owned:  # revoked in a rebalance: stop exporting them
            for gauge in (self.last_poll, self.last_commit, self.lag):
                try:
                    gauge.remove(*labels)
                except KeyError:
                    continue
        for topic, partition in owned:
            self.last_poll.labels(topic, partition).set(now)
        self._owned = owned
        self.liveness.assigned = len(owned)
        self.assigned.set(len(owned))

    def audit_written(self, seconds: float) -> None:
        self.audit_write.observe(seconds)

    def batch_done(
        self,
        batches: Mapping[Any, Sequence[RecordLike]],
        audit: Sequence[Mapping[str, Any]],
        dead_letters: Sequence[bytes],
        highwater: Callable[[Any], int | None],
    ) -> None:
        """A batch was stored, produced and committed: count it and note latency and lag.

        ``batches`` maps each TopicPartition to its records, ``dead_letters`` holds the dead
        letters' JSON values, ``highwater`` gives a partition's high water mark (or None).
        """
        now = self._wall()
        self.batches.inc()
        self._count(audit, dead_letters)
        observe = self.publish_to_feed.observe
        for tp, messages in batches.items():
            if not messages:
                continue
            labels = (safe(tp.topic), str(tp.partition))
            self.last_commit.labels(*labels).set(now)
            mark = highwater(tp)
            if mark is not None:
                self.lag.labels(*labels).set(max(0, mark - (messages[-1].offset + 1)))
            for message in messages:
                if message.timestamp and message.timestamp > 0:
                    observe(max(0.0, now - message.timestamp / 1000))

    def _count(self, audit: Sequence[Mapping[str, Any]], dead_letters: Sequence[bytes]) -> None:
        signals: dict[str, tuple[str, str]] = {}
        decisions: Tally[tuple[str, str, str, str]] = Tally()
        withheld: Tally[tuple[str, str, str]] = Tally()
        for record in audit:
            result = record.get("result")
            if result not in ("delivered", "withheld"):
                continue  # rejections are counted from the dead letters
            covenant = record.get("covenant") or {}
            recipient = safe(record.get("recipient"))
            covenant_id = safe(covenant.get("id"))
            decisions[(covenant_id, safe(covenant.get("rule")), recipient, result)] += 1
            if result == "withheld":
                reason = withheld_reason_of(record.get("reason"), has_rule=bool(covenant))
                withheld[(covenant_id, recipient, reason)] += 1
            signals.setdefault(str(record.get("signal_id")), (record["origin"], record["object"]))
        arrived: Tally[tuple[str, str]] = Tally(
            (safe(partner), safe(kind)) for partner, kind in signals.values()
        )
        dead: Tally[tuple[str, str]] = Tally()
        for value in dead_letters:
            letter = orjson.loads(value)
            partner = safe(letter.get("partner"))
            dead[(partner, rejection_code(letter.get("code")))] += 1
            arrived[(partner, INVALID_TYPE)] += 1
        for labels, count in decisions.items():
            self.decisions.labels(*labels).inc(count)
        for labels3, count in withheld.items():
            self.withheld.labels(*labels3).inc(count)
        for labels2, count in arrived.items():
            self.signals_in.labels(*labels2).inc(count)
        for labels2, count in dead.items():
            self.dead_letters.labels(*labels2).inc(count)
