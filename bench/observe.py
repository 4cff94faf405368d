"""Counting what a timed run left behind, independently of the hub's own counters.

Feed messages and dead letters are read back from the broker (every partition from the
beginning, until nothing new arrives), audit records are counted as rows in the store;
:mod:`bench.verify` compares them with what the workload implies. Also the CPU time of
another process (the broker, a worker) from ``/proc`` (Linux).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import func, select

from services.audit.store import SqlAuditStore
from services.broker.fetching import fetch_settings
from services.broker.settings import KafkaSettings
from services.database.engine import make_engine
from services.database.tables.audit import audit_records

IDLE_S = 1.5
"""A topic counts as read to its end after this long without a new record."""


async def read_topics(
    settings: KafkaSettings,
    topics: Sequence[str],
    *,
    expected: int | None = None,
    timeout_s: float = 120.0,
) -> list[tuple[str, bytes]]:
    """``(topic, value)`` of every record on ``topics``, read from the beginning without a
    consumer group; stops :data:`IDLE_S` after the last new record (at once when ``expected``
    records are in and nothing more came within a short wait) or after ``timeout_s``."""
    consumer = AIOKafkaConsumer(
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # as recipients read: an aborted batch is not work
        max_poll_records=10_000,
        **fetch_settings(),
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    found: list[tuple[str, bytes]] = []
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(await _partitions(consumer, topic))
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        deadline = time.monotonic() + timeout_s
        last = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            now = time.monotonic()
            if batch:
                last = now
                found.extend((tp.topic, m.value or b"") for tp, ms in batch.items() for m in ms)
                continue
            enough = expected is not None and len(found) >= expected
            if now - last >= (0.3 if enough else IDLE_S):
                break
    finally:
        await consumer.stop()
    return found


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer.topics()  # refreshes the metadata
        await asyncio.sleep(0.1)
    raise RuntimeError(f"topic {topic!r} has no partitions on the broker")


def exchange_ids(values: Sequence[tuple[str, bytes]]) -> list[str]:
    """The ``exchange_id`` of each feed message (the one feed field the benchmarks rely on)."""
    return [str(orjson.loads(value)["exchange_id"]) for _, value in values]


def audit_rows(url: str) -> int:
    """Audit records stored at ``url`` (rows in the store, not the router's tally)."""
    store = SqlAuditStore(make_engine(url))  # no create_schema: a missing table is an error
    try:
        return store.count()
    finally:
        store.close()


def first_decision(url: str) -> datetime | None:
    """The earliest decision time among the audit records at ``url`` (when routing began:
    the router stamps each record of a batch with the time it started deciding it)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            value = connection.execute(select(func.min(audit_records.c.timestamp))).scalar()
    finally:
        engine.dispose()
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # stored as UTC


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
