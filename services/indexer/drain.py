"""Index everything the audit topic holds, then return (``schakel up`` at start and stop).

At start-up it runs before :meth:`services.hub.maintenance.Maintenance.recover`, so the feed
copies of every batch the broker holds are in SQL when recovery decides what to re-deliver;
at a stop it runs after the routers and the indexer worker stopped and before the broker does,
so a memory-only broker takes no unindexed audit record with it.
"""

from __future__ import annotations

import asyncio
import time

from services.audit.model import AuditStore
from services.broker.settings import KafkaSettings
from services.indexer.loop import IndexerConfig, IndexerLoop, IndexerStats, OpenConsumer


class DrainError(RuntimeError):
    """The audit topic could not be indexed to its end in time."""


def drain(
    kafka: KafkaSettings | None,
    store: AuditStore,
    config: IndexerConfig | None = None,
    *,
    timeout_s: float = 120.0,
    open_consumer: OpenConsumer | None = None,
) -> int:
    """Index the audit topic up to its last stable offset; return the records new to SQL."""
    return run_drain(kafka, store, config, timeout_s=timeout_s, open_consumer=open_consumer).new


def run_drain(
    kafka: KafkaSettings | None,
    store: AuditStore,
    config: IndexerConfig | None = None,
    *,
    timeout_s: float = 120.0,
    open_consumer: OpenConsumer | None = None,
) -> IndexerStats:
    """:func:`drain`, returning what it read (messages, records) and wrote. It starts at the
    indexer group's committed offset, so a start-up reads only what the indexer left."""
    coroutine = _drain(kafka, store, config or IndexerConfig(), timeout_s, open_consumer)
    return asyncio.run(coroutine)


async def _drain(
    kafka: KafkaSettings | None,
    store: AuditStore,
    config: IndexerConfig,
    timeout_s: float,
    open_consumer: OpenConsumer | None,
) -> IndexerStats:
    indexer = IndexerLoop(kafka, store, config, open_consumer=open_consumer)
    await indexer.start()
    deadline = time.monotonic() + timeout_s
    consumer = indexer.consumer
    try:
        while time.monotonic() < deadline:
            polled = await consumer.getmany(
                timeout_ms=config.poll_timeout_ms, max_records=config.max_messages
            )
            if polled:
                await indexer.process(polled)
                continue
            # an empty poll of an assigned partition at its end: everything is indexed
            if consumer.assignment() and not sum((await indexer.lag()).values()):
                await indexer.commit_position()  # past a last commit marker: lag 0
                return indexer.stats
        raise DrainError(
            f"the audit topic {config.topic} was not indexed to its end within {timeout_s:.0f} "
            f"s ({indexer.stats.records} records read). Fix: check that the audit database "
            "is reachable, then start the hub again."
        )
    finally:
        await indexer.stop()
