"""Re-sent and re-read signals on every audit path, on the in-memory audit log (no broker).

The router loop's own ``process`` runs with a recording producer that appends audit messages
to :class:`~services.indexer.testing.MemoryAuditTopic`, and the router's audit tail reads that
topic. No indexer runs, so everything happens *within the indexer's lag*: the log-first paths
must give the outcome the sql path gives (tests/router/test_resend.py) — a signal decided once,
a changed re-send refused as ``conflicting_resend``, a re-read batch not decided again under a
changed covenant — and, once indexed, the same audit records.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from services.audit.testing import MemoryAuditStore
from services.config import ROOT
from services.core.audit_log import decode, encode
from services.demo.keys import DemoSigner
from services.indexer.step import decode_all, index
from services.indexer.testing import MemoryAuditTopic
from services.router.audit_tail import AuditTail
from services.router.loop import AuditPath, LoopConfig, RouterLoop
from services.router.policy_source import PolicySource
from services.router.resend import CONFLICTING_RESEND
from services.router.tail_reader import AuditTailIncompleteError, TailReader
from services.router.topics import (
    AUDIT,
    AUDIT_INDEXER_GROUP,
    DEAD_LETTER,
    FEED_PREFIX,
    signals_topic,
)
from tests.router.helpers import NOW, policy_source
from tests.router.test_resend import delivered_signal

pytestmark = pytest.mark.timeout(60)

AT = "2026-11-22T12:00:00+00:00"

PATHS: list[AuditPath] = ["sql", "audit-first", "transactional"]


@dataclass
class Meta:
    partition: int
    offset: int


@dataclass
class Producer:
    """Records feeds and dead letters; audit messages go to the in-memory audit topic."""

    log: MemoryAuditTopic
    sent: list[tuple[str, bytes]] = field(default_factory=list)

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, partition: int | None = None
    ) -> Any:
        if topic == AUDIT:
            meta = Meta(0, self.log.append(value))
        else:
            self.sent.append((topic, value))
            meta = Meta(0, len(self.sent))
        done: asyncio.Future[Meta] = asyncio.get_running_loop().create_future()
        done.set_result(meta)
        return done

    async def begin_transaction(self) -> None: ...
    async def commit_transaction(self) -> None: ...
    async def send_offsets_to_transaction(self, offsets: object, group: str) -> None: ...

    def feed(self) -> list[bytes]:
        return [v for t, v in self.sent if t.startswith(FEED_PREFIX)]

    def dead(self) -> list[dict[str, Any]]:
        return [orjson.loads(v) for t, v in self.sent if t == DEAD_LETTER]


class Owned:
    """The assignment of the only router of a hub: every partition is its own."""

    def __contains__(self, tp: object) -> bool:
        return True


class Consumer:
    highwater = None

    async def commit(self, offsets: object) -> None:
        return None

    def assignment(self) -> Owned:
        return Owned()


@dataclass
class Message:
    offset: int
    value: bytes


@dataclass
class Hub:
    """One router process on one audit path, with the audit log it writes."""

    path: AuditPath
    log: MemoryAuditTopic = field(default_factory=MemoryAuditTopic)
    store: MemoryAuditStore = field(default_factory=MemoryAuditStore)
    """The sql path's store; on a log-first path the indexer's (filled by :meth:`indexed`)."""
    producer: Producer | None = None

    def router(self, source: PolicySource | None = None) -> RouterLoop:
        """A router (re)started on this hub: on a log-first path it reads the unindexed tail."""
        loop = RouterLoop(
            None,  # type: ignore[arg-type] - never connects: its clients are doubles
            self.store,
            source or policy_source(),
            LoopConfig(topics=[], audit_path=self.path),
            clock=lambda: NOW,
        )
        self.producer = self.producer or Producer(self.log)
        loop._producer = self.producer  # type: ignore[assignment]
        loop._consumer = Consumer()  # type: ignore[assignment]
        if self.path != "sql":
            loop.tail = TailReader(AuditTail(), self.log.consumer(None), self._indexed_upto)
            asyncio.run(loop.tail.load(timeout_s=5))
        return loop

    async def _indexed_upto(self) -> int | None:
        return self.log.committed.get(AUDIT_INDEXER_GROUP)

    def indexed(self) -> MemoryAuditStore:
        """The audit records as the store holds them once everything is indexed."""
        if self.path != "sql":
            start = self.log.committed.get(AUDIT_INDEXER_GROUP, 0)
            values = [(o, self.log.values[o]) for o in range(start, self.log.end)]
            index(self.store, decode_all(values))
            self.log.committed[AUDIT_INDEXER_GROUP] = self.log.end
        return self.store


def process(loop: RouterLoop, signals: Sequence[dict[str, Any]]) -> None:
    tp = TopicPartition(signals_topic(str(signals[0]["source"])), 0)
    batch = {tp: [Message(i, orjson.dumps(s)) for i, s in enumerate(signals)]}
    asyncio.run(loop.process(batch))  # type: ignore[arg-type]


def changed(signal: dict[str, Any]) -> dict[str, Any]:
    unsigned = {k: v for k, v in signal.items() if k != "signature"}
    return DemoSigner()({**unsigned, "time": "2026-11-20T08:00:00Z"})


@pytest.mark.parametrize("path", PATHS)
def test_the_same_signal_again_within_the_lag_is_not_decided_or_produced_again(
    path: AuditPath,
) -> None:
    hub = Hub(path)
    loop = hub.router()
    signal = delivered_signal()
    process(loop, [signal])
    assert hub.producer is not None
    first = hub.producer.feed()
    assert first
    logged = hub.log.end
    for _ in range(3):
        process(loop, [signal])
    assert hub.producer.feed() == first  # three re-sends: not one feed message more
    if path != "sql":
        # nothing decided again: at most an empty "produced" message per re-send
        assert all(not decode(hub.log.values[o]).records for o in range(logged, hub.log.end))
    assert not hub.producer.dead()


@pytest.mark.parametrize("path", PATHS)
def test_other_content_within_the_lag_is_refused_as_on_the_sql_path(path: AuditPath) -> None:
    hub = Hub(path)
    loop = hub.router()
    signal = delivered_signal()
    process(loop, [signal])
    assert hub.producer is not None
    first = hub.producer.feed()
    process(loop, [changed(signal)])
    assert hub.producer.feed() == first  # nothing delivered for the changed content
    [dead] = hub.producer.dead()
    assert (dead["code"], dead["signal_id"]) == (CONFLICTING_RESEND, signal["id"])
    store = hub.indexed()
    records = [body for _, body in store.records(limit=1000)]
    refused = [r for r in records if r["action"] == "reject"]
    assert len(refused) == 1 and str(refused[0]["reason"]).startswith(f"{CONFLICTING_RESEND}: ")
    decided = [r for r in records if r["action"] != "reject"]
    assert len(decided) == len({r["record_id"] for r in decided})  # the first decision stands
    assert {r["timestamp"] for r in decided} == {records[0]["timestamp"]}


def withholding_tips(tmp_path: Path) -> PolicySource:
    folder = tmp_path / "covenants-before"
    shutil.copytree(ROOT / "covenants", folder)
    covenant = folder / "nh-drugsalert" / "2025.1.yaml"
    condition = "when: data.municipality in regions.riec_nh"
    covenant.write_text(
        covenant.read_text().replace(condition, 'when: data.municipality == "GM9999"')
    )
    return policy_source([folder])


def a_delivered_tip() -> dict[str, Any]:
    from tests.router.helpers import traffic

    source = policy_source()
    for signal in traffic(400):
        if signal["type"] == "residents.anonymous_tip.v1":
            hub = Hub("sql")
            process(hub.router(source), [signal])
            if hub.producer is not None and hub.producer.feed():
                return signal
    raise AssertionError("no delivered tip in the demo traffic")


@pytest.mark.parametrize("path", ["audit-first", "transactional"])
def test_a_restarted_router_keeps_the_logged_decision_under_a_changed_covenant(
    path: AuditPath, tmp_path: Path
) -> None:
    """A router logged a tip as withheld and died before committing its offsets (or the
    partner sent the tip again); the router restarted under a covenant that delivers tips
    reads it again within the lag."""
    tip = a_delivered_tip()
    hub = Hub(path)
    process(hub.router(withholding_tips(tmp_path)), [tip])
    assert hub.producer is not None and hub.producer.feed() == []
    process(hub.router(policy_source()), [tip])  # restarted: offsets were never committed
    assert hub.producer.feed() == []  # the logged decision (withheld) stands
    [record] = [r for _, r in hub.indexed().records() if r["action"] != "reject"]
    assert record["result"] == "withheld"


def test_a_logged_feed_never_acknowledged_is_produced_as_logged(tmp_path: Path) -> None:
    """Logged delivered under the old covenant, died before the feed send: the restarted
    router produces the logged message (old rule), not a re-decided one."""
    tip = a_delivered_tip()
    hub = Hub("audit-first")
    first = hub.router(policy_source())

    def die(point: str) -> None:
        if point == "audit-acked":
            raise RuntimeError("killed")

    first._crash_point = die
    with pytest.raises(RuntimeError):
        process(first, [tip])
    assert hub.producer is not None and hub.producer.feed() == []
    process(hub.router(withholding_tips(tmp_path)), [tip])
    [feed] = hub.producer.feed()
    [record] = [r for _, r in hub.indexed().records() if r["action"] != "reject"]
    assert record["result"] == "delivered"
    assert orjson.loads(feed)["exchange_id"] == record["feed_exchange_id"]
    assert orjson.loads(feed)["covenant"] == record["covenant"]


def test_a_feed_the_log_says_was_acknowledged_is_not_produced_again_while_the_index_lags() -> None:
    """The index holds the copy as never acknowledged (the indexer stopped before the
    ``produced`` message); the log says the broker has it: a re-send produces nothing."""
    hub = Hub("audit-first")
    loop = hub.router()
    signal = delivered_signal()
    process(loop, [signal])
    assert hub.producer is not None
    first = hub.producer.feed()
    copies = [o for o in range(hub.log.end) if decode(hub.log.values[o]).feeds]
    index(hub.store, decode_all([(o, hub.log.values[o]) for o in copies]))  # not "produced"
    assert hub.store.unproduced([str(r["record_id"]) for _, r in hub.store.records()])
    process(hub.router(), [signal])  # a restarted router: the log's tail from offset 0
    assert hub.producer.feed() == first


def test_a_changed_resend_of_a_decision_the_tail_bound_forgot_is_not_delivered() -> None:
    """The indexer is stopped and the router's audit tail overflows its bound: the oldest
    decisions go before the index holds them. A changed re-send of one of them must not be
    decided again (its changed content delivered while the index keeps the first record):
    the router waits for the indexer and stops, uncommitted, if it does not come."""
    hub = Hub("audit-first")
    loop = hub.router()
    loop.tail = TailReader(
        AuditTail(max_entries=4), hub.log.consumer(None), hub._indexed_upto, catch_up_s=0.2
    )
    asyncio.run(loop.tail.load(timeout_s=5))
    signal = delivered_signal()
    start = hub.log.end
    process(loop, [signal])
    assert hub.producer is not None
    first = hub.producer.feed()
    model = decode(hub.log.values[start]).records[0]
    for n in range(8):  # another router's decisions: more than the tail holds
        hub.log.extend(encode([{**model, "record_id": f"other-{n}"}], [], AT))
    ids = [str(r["record_id"]) for r in decode(hub.log.values[start]).records]
    with pytest.raises(AuditTailIncompleteError):
        process(loop, [changed(signal)])
    assert ids and not loop.tail.tail.lookup(ids)  # forgotten, and not in the index either
    assert hub.producer.feed() == first  # nothing decided while the tail is blind
    hub.indexed()  # the indexer catches up: the forgotten decisions are in the index
    process(loop, [changed(signal)])
    assert first and hub.producer.feed() == first  # the changed content never delivered
    [dead] = hub.producer.dead()
    assert (dead["code"], dead["signal_id"]) == (CONFLICTING_RESEND, signal["id"])


@pytest.mark.parametrize("path", PATHS)
def test_a_signal_sent_again_within_one_batch_is_decided_once(path: AuditPath) -> None:
    """A partner sends a signal twice in quick succession (both land in one batch): once as
    it was, once changed. The first stands; the same content adds nothing, other content is
    refused as ``conflicting_resend`` — not delivered under the same exchange id."""
    signal = delivered_signal()
    once = Hub(path)
    process(once.router(), [signal])
    assert once.producer is not None
    hub = Hub(path)
    process(hub.router(), [signal, signal, changed(signal)])
    assert hub.producer is not None
    assert hub.producer.feed() == once.producer.feed()  # each feed message once, as first sent
    [dead] = hub.producer.dead()
    assert (dead["code"], dead["signal_id"]) == (CONFLICTING_RESEND, signal["id"])
    assert orjson.loads(base64.b64decode(dead["original"])) == changed(signal)
    records = [body for _, body in hub.indexed().records(limit=1000)]
    decided = [r for r in records if r["action"] != "reject"]
    assert len(decided) == len({r["record_id"] for r in decided})
    assert len(records) == len(decided) + 1  # and the one refusal


@pytest.mark.parametrize("path", PATHS)
def test_the_decided_content_again_after_a_changed_copy_in_one_batch_is_not_refused(
    path: AuditPath,
) -> None:
    """Decided before; then one batch holds a changed copy and the original: only the
    changed copy is refused (the original is the decision that stands)."""
    hub = Hub(path)
    loop = hub.router()
    signal = delivered_signal()
    process(loop, [signal])
    process(loop, [changed(signal), signal])
    assert hub.producer is not None
    [dead] = hub.producer.dead()
    assert orjson.loads(base64.b64decode(dead["original"])) == changed(signal)
