"""A router given other partitions reads the audit log to its end before their records.

Their previous owner may have logged decisions it never produced or committed (it died, or
the group took the partitions away mid-batch): the new owner reads those records again and
must find the decisions, however stale its tail's prefetch (aiokafka hands out one fetch and
fetches again only once it is taken; :class:`HeldFetch` does the same on the in-memory log).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from services.core.audit_log import FeedCopy, encode
from services.indexer.testing import MemoryAuditConsumer, MemoryMessage
from services.router.audit_tail import AuditTail
from services.router.batch import Consumed, RoutedBatch, route_batch
from services.router.loop import RouterLoop
from services.router.resend import CONFLICTING_RESEND
from services.router.tail_reader import TailReader
from services.router.topics import signals_topic
from tests.router.helpers import NOW, policy_source
from tests.router.test_resend import delivered_signal
from tests.router.test_resend_log_first import Hub, Message, changed

pytestmark = pytest.mark.timeout(60)


def logged(signal: dict[str, object]) -> list[bytes]:
    """The audit messages a router logs for ``signal`` before its feed send."""
    source = policy_source().current
    consumed = Consumed(signals_topic(str(signal["source"])), 0, 0, orjson.dumps(signal))
    routed: RoutedBatch = route_batch([consumed], source.registry, source.policy, NOW)
    copies = [FeedCopy(e.exchange_id, e.recipient, e.key, e.value) for e in routed.outbox]
    return encode(routed.audit, copies, NOW.isoformat())


class HeldFetch(MemoryAuditConsumer):
    """A read without waiting takes only what an earlier fetch brought (up to
    :attr:`held_upto`), as aiokafka's ``getmany(timeout_ms=0)``; a waiting read fetches."""

    held_upto = 0

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[MemoryMessage]]:
        if timeout_ms:
            return await super().getmany(
                *partitions, timeout_ms=timeout_ms, max_records=max_records
            )
        held = self.held_upto - await self.position(partitions[0])
        if held <= 0:
            return {}
        limit = held if max_records is None else min(held, max_records)
        return await super().getmany(*partitions, timeout_ms=0, max_records=limit)


@dataclass
class Signals:
    """The router's group consumer: the group has just given it one partition, holding
    ``values``; the loop stops after that batch."""

    loop: RouterLoop
    values: list[bytes]
    tp: TopicPartition = field(default_factory=lambda: TopicPartition("signals", 0))

    def assignment(self) -> set[TopicPartition]:
        return {self.tp}

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[Message]]:
        if not self.values:
            self.loop._stopping.set()
            return {}
        batch = [Message(i, v) for i, v in enumerate(self.values)]
        self.values = []
        return {self.tp: batch}

    async def commit(self, offsets: object) -> None:
        return None


def test_a_router_given_a_partition_sees_what_its_previous_owner_logged() -> None:
    hub = Hub("audit-first")
    loop = hub.router()
    held = HeldFetch(hub.log, None)
    loop.tail = TailReader(AuditTail(), held, hub._indexed_upto)
    asyncio.run(loop.tail.load(timeout_s=5))
    held.held_upto = hub.log.end  # its last fetch, before the other router logged
    signal = delivered_signal()
    hub.log.extend(logged(signal))  # the previous owner logged it, then died
    # the group gives this router the partition; the partner's changed re-send is on it
    loop._consumer = Signals(loop, [orjson.dumps(changed(signal))])  # type: ignore[assignment]
    asyncio.run(loop.run())
    assert hub.producer is not None
    assert hub.producer.feed() == []  # the changed content is never delivered
    [dead] = hub.producer.dead()
    assert (dead["code"], dead["signal_id"]) == (CONFLICTING_RESEND, signal["id"])
