"""The audit-log messages and one indexing step, on the in-memory store (no broker)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.audit.testing import MemoryAuditStore
from services.core.audit_log import AuditLogError, FeedCopy, UnknownFormatError, decode, encode
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
        b'{"format":1,"at":"x","records":[{}],"feeds":[],"produced":[]}',
        b'{"format":"1"}',
    ],
)
def test_anything_else_on_the_topic_is_refused_by_offset_and_recorded(value: bytes) -> None:
    with pytest.raises(AuditLogError):
        decode(value)
    decoded = decode_all([(41, value), (42, encode([record(1)], [], AT)[0])])
    assert decoded.refused == 1
    store = MemoryAuditStore()
    assert index(store, decoded).refused == 1
    kept = store.get("audit-topic-41-refused")  # the loss is in the chain, by offset
    assert kept is not None and kept["result"] == "refused" and "offset 41" in kept["reason"]
    assert store.get("r-1") is not None  # the records after it are indexed


def test_a_decodable_record_the_store_would_refuse_blocks_nothing() -> None:
    """A poison pill: well-formed JSON, a record without action/result or with a bad time."""
    bad = [
        {"record_id": "r-x"},
        {**record(9), "timestamp": "not a time"},
    ]
    values = [(40 + n, encode([b], [], AT)[0]) for n, b in enumerate(bad)]
    values.append((50, encode([record(2)], [], AT)[0]))
    decoded = decode_all(values)
    assert decoded.refused == 2
    store = MemoryAuditStore()
    index(store, decoded)  # raises nothing: the step goes on
    assert store.get("r-2") is not None and store.get("r-x") is None
    assert store.get("audit-topic-40-refused") is not None
    assert store.get("audit-topic-41-refused") is not None
    assert index(store, decode_all(values)).new == 0  # a replay adds nothing


def test_another_format_version_stops_the_indexer_instead_of_skipping() -> None:
    newer = b'{"format": 2, "at": "x", "records": [], "feeds": [], "produced": []}'
    with pytest.raises(UnknownFormatError, match="same Schakel version"):
        decode_all([(7, newer)])


def test_a_replayed_step_adds_nothing_and_marks_where_feeds_landed() -> None:
    store = MemoryAuditStore()
    first = list(enumerate(encode([record(n) for n in range(10)], [copy(1)], AT)))
    done = index(store, decode_all(first))
    assert (done.records, done.new) == (10, 10)
    # the replay of the same batch (a crash before the offset commit), then its produced note
    note = encode([], [], AT, produced=[("x-1", 2, 9)])[0]
    again = index(store, decode_all([*first, (len(first), note)]))
    assert again.new == 0
    assert store.count() == 10
    [entry] = store.undelivered()
    assert (entry.exchange_id, entry.partition, entry.offset) == ("x-1", 2, 9)


def test_a_refused_message_leaves_no_content_in_the_error_or_the_refusal_record() -> None:
    raw = "8712345678901234567"  # an EAN-like value where the format belongs
    value = orjson.dumps({"format": raw, "records": [], "feeds": [], "produced": [], "at": AT})
    with pytest.raises(AuditLogError) as refused:
        decode(value)
    assert raw not in str(refused.value)
    store = MemoryAuditStore()
    index(store, decode_all([(41, value)]))
    kept = store.get("audit-topic-41-refused")
    assert kept is not None and raw not in orjson.dumps(kept).decode()


def test_the_store_is_given_the_rows_the_step_checked_not_the_records_again() -> None:
    """Each record is made into its row once (decode_all checks it so); the store takes those
    rows, so a row the step refused never reaches it and none is built twice."""
    decoded = decode_all(list(enumerate(encode([record(n) for n in range(3)], [], AT))))
    assert [row.record_id for row in decoded.rows] == ["r-0", "r-1", "r-2"]
    calls: list[str] = []

    class Spy(MemoryAuditStore):
        def record(self, audit: Any, outbox: Any) -> int:
            calls.append("record")
            return super().record(audit, outbox)

        def record_rows(self, audit: Any, outbox: Any) -> int:
            calls.append("record_rows")
            return super().record_rows(audit, outbox)

    store = Spy()
    assert index(store, decoded).new == 3
    assert calls == ["record_rows"]
    assert store.get("r-1") == decoded.messages[0].records[1]
