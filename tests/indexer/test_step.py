"""The audit-log messages and one indexing step, on the in-memory store (no broker)."""

from __future__ import annotations

import orjson
import pytest

from services.audit.testing import MemoryAuditStore
from services.core.audit_log import AuditLogError, FeedCopy, decode, encode
from services.indexer.step import decode_all, index

AT = "2026-11-22T12:00:00+00:00"


def record(n: int) -> dict[str, object]:
    return {
        "record_id": f"r-{n}",
        "timestamp": AT,
        "actor": "schakel-router",
        "action": "deliver",
        "result": "delivered",
        "object": "signal",
        "payload": "x" * 200,
    }


def copy(n: int, offset: int | None = None) -> FeedCopy:
    return FeedCopy(
        f"x-{n}", "riec-nh", b"p1.k", orjson.dumps({"n": n}), 0 if offset else None, offset
    )


def test_messages_are_split_below_the_limit_and_round_trip() -> None:
    records = [record(n) for n in range(100)]
    feeds = [copy(n, n + 1) for n in range(50)]
    values = encode(records, feeds, AT, produced=[("x-1", 0, 7)], max_bytes=4096)
    assert len(values) > 5
    assert all(len(v) <= 4096 + 512 for v in values)
    decoded = [decode(v) for v in values]
    assert [r for m in decoded for r in m.records] == records
    assert [f for m in decoded for f in m.feeds] == feeds
    assert [p for m in decoded for p in m.produced] == [("x-1", 0, 7)]
    assert encode([], [], AT) == []


@pytest.mark.parametrize(
    "value",
    [
        b"{broken",
        b"[]",
        b'{"format": 2}',
        b'{"format":1,"at":"x","records":[{}],"feeds":[],"produced":[]}',
    ],
)
def test_anything_else_on_the_topic_is_refused_by_offset(value: bytes) -> None:
    with pytest.raises(AuditLogError):
        decode(value)
    messages, refused = decode_all([(41, value), (42, encode([record(1)], [], AT)[0])])
    assert refused == 1
    assert [len(m.records) for m in messages] == [1]


def test_a_replayed_step_adds_nothing_and_marks_where_feeds_landed() -> None:
    store = MemoryAuditStore()
    first = [decode(v) for v in encode([record(n) for n in range(10)], [copy(1)], AT)]
    done = index(store, first)
    assert (done.records, done.new) == (10, 10)
    # the replay of the same batch (a crash before the offset commit), then its produced note
    again = index(store, [*first, decode(encode([], [], AT, produced=[("x-1", 2, 9)])[0])])
    assert again.new == 0
    assert store.count() == 10
    [entry] = store.undelivered()
    assert (entry.exchange_id, entry.partition, entry.offset) == ("x-1", 2, 9)
