"""How far the audit index is behind the audit log, for the privacy officer's integrity page.

On the log-first audit paths the router makes its audit records durable on the ``audit`` topic
and the audit indexer (:mod:`services.indexer`) writes them into the SQL store the integrity
page verifies, committing its offsets after each SQL commit (and its position when idle). What
the store does not hold yet is therefore the audit topic's end offset minus the indexer group's
committed offset, summed over the partitions: audit-log messages (each a batch's records and
feed copies) not indexed, and not covered by a verification run from the page. Where the
indexer never committed (or committed below what retention kept), it starts at the partition's
*log start offset*, the earliest message the broker still holds, so the lag counts from there
and not from offset 0: messages retention deleted are not waiting to be indexed.

The figure needs the broker: without Kafka settings (``SCHAKEL_KAFKA_BOOTSTRAP``) in the web
process, or when the broker does not answer, the lag is *unknown* and the page says so and why
— never a made-up 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from services.broker.errors import BrokerError
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.router.topics import AUDIT, AUDIT_INDEXER_GROUP

TIMEOUT_S = 5.0
"""How long a page view waits for the broker before it says the lag is unknown."""
NO_KAFKA = (
    "the web workplace has no Kafka settings (SCHAKEL_KAFKA_BOOTSTRAP), so it cannot read the "
    "audit log's end"
)


@dataclass(frozen=True)
class IndexLag:
    """Audit-log messages not in the audit index yet; ``behind`` is None when unknown."""

    behind: int | None
    reason: str = ""
    """Why the lag is unknown (empty when it is known)."""

    def to_json(self) -> dict[str, Any]:
        return {"behind": self.behind, "known": self.behind is not None, "reason": self.reason}


IndexLagSource = Callable[[], IndexLag]


def no_kafka() -> IndexLag:
    """The source of a web process started without Kafka settings."""
    return IndexLag(None, NO_KAFKA)


class KafkaIndexLag:
    """Reads the audit topic's end offsets and the indexer group's committed offsets."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topic: str = AUDIT,
        group: str = AUDIT_INDEXER_GROUP,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._settings = settings
        self._topic = topic
        self._group = group
        self._timeout_s = timeout_s

    def __call__(self) -> IndexLag:
        try:
            with KafkaTopicAdmin(self._settings, timeout=self._timeout_s) as topics:
                ends = topics.end_offsets(self._topic)
            committed, starts = self._committed_and_starts(sorted(ends))
        except (BrokerError, KafkaError) as exc:
            # the class name only: a broker's message may carry addresses, never needed here
            return IndexLag(None, f"the broker did not answer ({exc.__class__.__name__})")
        return IndexLag(behind(ends, committed, starts))

    def _committed_and_starts(self, partitions: list[int]) -> tuple[dict[int, int], dict[int, int]]:
        """The indexer group's committed offsets, and each partition's log start offset."""
        timeout_ms = int(self._timeout_s * 1000)
        admin = KafkaAdminClient(
            **self._settings.client_kwargs_kafka_python(),
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
        )
        try:
            answer: Mapping[str, Mapping[Any, Any]] = admin.list_group_offsets([self._group])
            parts = [TopicPartition(self._topic, p) for p in partitions]
            earliest: Mapping[Any, Any] = admin.list_partition_offsets(
                dict.fromkeys(parts, OffsetSpec.EARLIEST), timeout_ms=timeout_ms
            )
        finally:
            admin.close()
        committed = {
            tp.partition: int(meta.offset)
            for tp, meta in answer.get(self._group, {}).items()
            if tp.topic == self._topic and meta.offset is not None and meta.offset >= 0
        }
        starts = {tp.partition: max(0, int(meta.offset)) for tp, meta in earliest.items()}
        return committed, starts


def behind(
    ends: Mapping[int, int], committed: Mapping[int, int], starts: Mapping[int, int] | None = None
) -> int:
    """Messages between where the indexer reads next in each partition and its end: its
    committed offset, or the log start offset (``starts``, 0 if unknown) where it never
    committed or committed outside what the broker holds — below the log start (retention)
    or past the end (a topic recreated, a broker that lost its tail): the indexer's consumer
    resets to the earliest offset there, so all of it is still to be indexed, not none."""
    starts = starts or {}
    total = 0
    for partition, end in ends.items():
        start = starts.get(partition, 0)
        at = committed.get(partition, start)
        total += max(0, end - (at if start <= at <= end else start))
    return total
