"""Which delivered feed messages a broker still holds, checked message by message.

After a persistent broker was killed and restarted it holds everything it saved, and lost
only what it acknowledged since; end offsets alone cannot tell which (routers may already
have written new messages at the offsets the lost ones had). So each unconsumed outbox entry
is looked up where the broker said it put it — its recorded partition and offset — and
counts as held only when the message there is the entry's own (same value bytes). Everything
else (never produced, beyond the partition's end, or another message in its place) is
missing and is re-delivered.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition

from services.audit.model import OutboxEntry
from services.broker.settings import KafkaSettings
from services.router.topics import feed_topic

READ_TIMEOUT_S = 60.0


def missing_from_feed(
    kafka: KafkaSettings,
    recipient: str,
    entries: Iterable[OutboxEntry],
    ends: Mapping[int, int],
    *,
    timeout_s: float = READ_TIMEOUT_S,
) -> list[OutboxEntry]:
    """Those of ``entries`` (one recipient's, unconsumed) that ``feed.<recipient>``, whose
    partitions end at ``ends``, does not hold at their recorded place, in their order."""
    entries = list(entries)
    placed: dict[int, dict[int, OutboxEntry]] = defaultdict(dict)
    for entry in entries:
        p, offset = entry.partition, entry.offset
        if p is not None and offset is not None and offset < ends.get(p, 0):
            placed[p][offset] = entry
    held = _held(kafka, feed_topic(recipient), placed, ends, timeout_s) if placed else set()
    return [e for e in entries if e.exchange_id not in held]


def _held(
    kafka: KafkaSettings,
    topic: str,
    placed: Mapping[int, Mapping[int, OutboxEntry]],
    ends: Mapping[int, int],
    timeout_s: float,
) -> set[str]:
    """Exchange ids whose message is found at their recorded offset (read from the lowest
    recorded offset of each partition to its end)."""
    consumer = KafkaConsumer(
        **kafka.client_kwargs_kafka_python(), enable_auto_commit=False, group_id=None
    )
    held: set[str] = set()
    try:
        parts = {TopicPartition(topic, p): min(offsets) for p, offsets in placed.items()}
        consumer.assign(list(parts))
        for tp, start in parts.items():
            consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        waiting = set(parts)
        while waiting and time.monotonic() < deadline:
            for tp, messages in consumer.poll(timeout_ms=500, max_records=5_000).items():
                wanted = placed[tp.partition]
                for message in messages:
                    entry = wanted.get(message.offset)
                    if entry is not None and message.value == entry.value:
                        held.add(entry.exchange_id)
            waiting = {tp for tp in waiting if consumer.position(tp) < ends[tp.partition]}
    finally:
        consumer.close()
    return held
