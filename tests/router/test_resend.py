"""A partner sends a signal id again (issue 15, F2), driven through the router loop's own
``process`` with the in-memory store and a recording producer:

* the same signal again produces no feed message the broker already acknowledged (a restarted
  demo re-sent 3,742 signals and feed.riec-nh held 8,281 messages for them);
* other content under a decided id is dead-lettered as ``conflicting_resend`` and audited,
  and the first decision stands;
* a decision stored but never acknowledged by the broker (a crash in between) is produced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from services.audit.testing import MemoryAuditStore
from services.demo.keys import DemoSigner
from services.router.batch import Consumed, route_batch
from services.router.loop import LoopConfig, RouterLoop
from services.router.resend import CONFLICTING_RESEND
from services.router.topics import DEAD_LETTER, FEED_PREFIX, signals_topic
from tests.router.helpers import NOW, policy_source, traffic

pytestmark = pytest.mark.timeout(60)


@dataclass
class Meta:
    partition: int
    offset: int


@dataclass
class Producer:
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        self.sent.append((topic, value))
        done: asyncio.Future[Meta] = asyncio.get_running_loop().create_future()
        done.set_result(Meta(0, len(self.sent)))
        return done

    def feed(self) -> list[bytes]:
        return [v for t, v in self.sent if t.startswith(FEED_PREFIX)]

    def dead(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, v in self.sent if t == DEAD_LETTER]


class Consumer:
    highwater = None

    async def commit(self, offsets: object) -> None:
        return None


@dataclass
class Message:
    offset: int
    value: bytes


def delivered_signal() -> dict[str, Any]:
    """A demo signal the shipped covenants deliver to at least one recipient."""
    source = policy_source()
    for signal in traffic(200):
        partner = str(signal["source"])
        record = Consumed(signals_topic(partner), 0, 0, orjson.dumps(signal))
        if route_batch([record], source.current.registry, source.current.policy, NOW).outbox:
            return signal
    raise AssertionError("no delivered signal in the demo traffic")


def loop_with(store: MemoryAuditStore) -> tuple[RouterLoop, Producer]:
    loop = RouterLoop(
        None,  # type: ignore[arg-type] - never connects: consumer and producer are doubles
        store,
        policy_source(),
        # the sql path writes the store itself; on a log-first path the audit indexer fills
        # the store the screening reads (tests/router/test_log_first_kafka.py)
        LoopConfig(topics=[], audit_path="sql"),
        clock=lambda: NOW,
    )
    producer = Producer()
    loop._producer = producer  # type: ignore[assignment]
    loop._consumer = Consumer()  # type: ignore[assignment]
    return loop, producer


def process(loop: RouterLoop, signals: Sequence[dict[str, Any]]) -> None:
    tp = TopicPartition(signals_topic(str(signals[0]["source"])), 0)
    batch = {tp: [Message(i, orjson.dumps(s)) for i, s in enumerate(signals)]}
    asyncio.run(loop.process(batch))  # type: ignore[arg-type]


def test_the_same_signal_again_produces_no_feed_message_the_broker_acknowledged():
    store = MemoryAuditStore()
    loop, producer = loop_with(store)
    signal = delivered_signal()
    process(loop, [signal])
    first = producer.feed()
    assert first
    for _ in range(3):
        process(loop, [signal])
    assert producer.feed() == first  # three full re-sends: not one message more
    assert not producer.dead()


def test_other_content_under_a_decided_id_is_dead_lettered_audited_and_the_first_stands():
    store = MemoryAuditStore()
    loop, producer = loop_with(store)
    signal = delivered_signal()
    process(loop, [signal])
    first = producer.feed()
    records_before = len(store.records(limit=1000))
    unsigned = {k: v for k, v in signal.items() if k != "signature"}
    changed = DemoSigner()({**unsigned, "time": "2026-11-20T08:00:00Z"})
    process(loop, [changed])
    assert producer.feed() == first  # nothing delivered for the changed content
    [dead] = producer.dead()
    assert dead["code"] == CONFLICTING_RESEND
    assert dead["signal_id"] == signal["id"]
    after = [r for _, r in store.records(limit=1000)]
    assert len(after) == records_before + 1
    refused = after[-1]
    assert refused["action"] == "reject"
    assert str(refused["reason"]).startswith(f"{CONFLICTING_RESEND}: ")
    decided = [r for r in after if r["signal_id"] == signal["id"] and r["action"] != "reject"]
    assert {r["timestamp"] for r in decided} == {r["timestamp"] for r in after[:records_before]}
    process(loop, [changed])  # the same conflict again: dead-lettered, audited once
    assert len(producer.dead()) == 2
    assert len(store.records(limit=1000)) == records_before + 1


def test_a_decision_stored_but_never_acknowledged_by_the_broker_is_produced_on_the_resend():
    store = MemoryAuditStore()
    signal = delivered_signal()
    source = policy_source()
    record = Consumed(signals_topic(str(signal["source"])), 0, 0, orjson.dumps(signal))
    routed = route_batch([record], source.current.registry, source.current.policy, NOW)
    store.record(routed.audit, routed.outbox)  # the worker died before producing
    loop, producer = loop_with(store)
    process(loop, [signal])
    assert len(producer.feed()) == len(routed.outbox)
