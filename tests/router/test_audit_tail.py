"""The router's view of the audit log beyond the index (services/router/audit_tail.py,
tail_reader.py), on the in-memory audit log: the first record stands, a copy is produced
again only until acknowledged, what the indexer committed past is forgotten, and a start-up
reads only the span the indexer has not committed."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from services.core.audit_log import FeedCopy, decode, encode
from services.indexer.testing import MemoryAuditTopic
from services.router.audit_tail import AuditTail
from services.router.tail_reader import TailReader

pytestmark = pytest.mark.timeout(30)

AT = "2026-11-22T12:00:00+00:00"


def record(n: int, result: str = "delivered") -> dict[str, object]:
    return {"record_id": f"x-{n}", "result": result, "action": "disclose"}


def copy(n: int, offset: int | None = None) -> FeedCopy:
    return FeedCopy(
        f"x-{n}", "riec-nh", b"k", orjson.dumps({"n": n}), 0 if offset else None, offset
    )


def test_the_first_logged_record_stands_and_a_copy_until_acknowledged() -> None:
    tail = AuditTail()
    (first,) = encode([record(1), record(2)], [copy(1), copy(2)], AT)
    tail.add(0, decode(first))
    (again,) = encode([record(1, "withheld")], [], AT)
    tail.add(1, decode(again))
    found = tail.lookup(["x-1", "x-2", "x-3"])
    assert set(found) == {"x-1", "x-2"}
    assert found["x-1"].record["result"] == "delivered"  # the first record, as the index keeps
    assert found["x-1"].copy is not None and found["x-1"].copy.value == orjson.dumps({"n": 1})
    (acked,) = encode([], [], AT, produced=[("x-1", 0, 9)])
    tail.add(2, decode(acked))
    assert tail.lookup(["x-1"])["x-1"].copy is None  # acknowledged: not produced again
    assert tail.lookup(["x-2"])["x-2"].copy is not None


def test_what_the_indexer_committed_past_is_forgotten_and_the_size_is_bounded() -> None:
    tail = AuditTail(max_entries=5)
    for n in range(4):
        tail.add(n, decode(encode([record(n)], [copy(n)], AT)[0]))
    assert tail.evict_below(2) == 2
    assert set(tail.lookup([f"x-{n}" for n in range(4)])) == {"x-2", "x-3"}
    tail.add_own(9, [record(n) for n in range(10, 14)])
    assert len(tail) <= 5  # the oldest went (with a warning), never more than the bound
    assert tail.lookup(["x-13"])["x-13"].copy is None  # own batches: feeds acknowledged


def test_a_start_up_reads_only_what_the_indexer_has_not_committed() -> None:
    topic = MemoryAuditTopic()
    for n in range(50):
        topic.extend(encode([record(n)], [], AT))
    topic.committed["indexer"] = 45

    async def indexed() -> int | None:
        return topic.committed.get("indexer")

    reader = TailReader(AuditTail(), topic.consumer(None), indexed)
    asyncio.run(reader.load(timeout_s=5))
    assert reader.read == 5  # offsets 45-49, not the 50 the topic holds
    assert set(reader.tail.lookup([f"x-{n}" for n in range(50)])) == {
        f"x-{n}" for n in range(45, 50)
    }
    topic.committed["indexer"] = 48
    asyncio.run(reader.evict())
    assert len(reader.tail) == 2


def test_a_start_up_without_an_indexer_commit_reads_from_the_log_start() -> None:
    topic = MemoryAuditTopic()
    for n in range(10):
        topic.extend(encode([record(n)], [], AT))
    topic.delete_before(7)

    async def never() -> int | None:
        return None

    reader = TailReader(AuditTail(), topic.consumer(None), never)
    asyncio.run(reader.load(timeout_s=5))
    assert reader.read == 3


def test_a_tail_that_forgot_unindexed_decisions_is_incomplete_until_the_indexer_passes_them() -> (
    None
):
    tail = AuditTail(max_entries=2)
    for n in range(4):
        tail.add(n, decode(encode([record(n)], [], AT)[0]))
    assert not tail.complete  # x-0 and x-1 went for the bound; the index does not hold them
    tail.evict_below(1)
    assert not tail.complete  # x-1 (offset 1) is not indexed yet
    tail.evict_below(2)
    assert tail.complete


def test_an_indexer_committed_past_the_end_evicts_nothing() -> None:
    """The audit topic was recreated (or the broker lost its tail) and the indexer's old
    committed offset lies past the new end: its consumer starts over from the earliest offset,
    so nothing the tail holds is indexed yet and none of it may be forgotten."""
    topic = MemoryAuditTopic()
    for n in range(5):
        topic.extend(encode([record(n)], [], AT))
    topic.committed["indexer"] = 50

    async def indexed() -> int | None:
        return topic.committed.get("indexer")

    reader = TailReader(AuditTail(), topic.consumer(None), indexed)
    asyncio.run(reader.load(timeout_s=5))
    asyncio.run(reader.evict())
    assert set(reader.tail.lookup([f"x-{n}" for n in range(5)])) == {f"x-{n}" for n in range(5)}
