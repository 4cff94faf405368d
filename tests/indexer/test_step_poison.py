"""Crafted audit-topic messages that decode, but that a store cannot take, against every store.

The indexer's promise (services/indexer/step.py): a message the store cannot take is refused
alone, by offset, and replaced by a refusal record; the messages after it are indexed. A
message that passes :func:`decode_all` and then fails inside the store is a poison pill: the
indexer stops, is restarted, reads the same message again, and indexes nothing ever after.
The in-memory double took some of these that SQLite and PostgreSQL refuse, so these tests run
on all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.audit.model import AuditStore
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore
from services.core.audit_log import encode
from services.database.engine import make_engine
from services.indexer.step import decode_all, index

AT = "2026-11-22T12:00:00+00:00"
RECORD = {"record_id": "r-1", "timestamp": AT, "action": "deliver", "result": "delivered"}


def message(**parts: Any) -> bytes:
    body: dict[str, Any] = {"format": 1, "at": AT, "records": [], "feeds": [], "produced": []}
    return orjson.dumps({**body, **parts})


POISON = {
    # a searchable column that is not text: SQLite cannot bind it, PostgreSQL neither
    "object is a mapping": message(records=[{**RECORD, "object": {"a": 1}}]),
    "recipient is a list": message(records=[{**RECORD, "recipient": ["riec-nh"]}]),
    "covenant rule is a list": message(records=[{**RECORD, "covenant": {"id": "c", "rule": [1]}}]),
    "signal_id is a number": message(records=[{**RECORD, "signal_id": 5}]),
    # text PostgreSQL cannot hold
    "record_id holds NUL": message(records=[{**RECORD, "record_id": "r-\x00"}]),
    "a subject holds NUL": message(records=[{**RECORD, "subjects": {"ean": "p-\x00"}}]),
    "origin holds NUL": message(records=[{**RECORD, "origin": "o-\x00"}]),
    # feed copies and "produced" notes the outbox cannot take
    "feed copy without exchange id": message(feeds=[["", "riec-nh", "k", "v", None, None]]),
    "feed copy without recipient": message(feeds=[["x-1", "", "k", "v", None, None]]),
    "feed copy partition beyond int32": message(feeds=[["x-1", "riec-nh", "k", "v", 2**31, 1]]),
    "feed copy negative offset": message(feeds=[["x-1", "riec-nh", "k", "v", 0, -1]]),
    "produced partition beyond int64": message(produced=[["x-1", 2**63, 0]]),
    "produced offset beyond int64": message(produced=[["x-1", 0, 2**63]]),
    "produced without exchange id": message(produced=[["", 0, 1]]),
    # a time with no UTC equivalent: datetime.astimezone raised OverflowError, which stopped
    # decode_all itself (a record's time) or the store (the message's)
    "record time before year 1 in UTC": message(
        records=[{**RECORD, "timestamp": "0001-01-01T00:00:00+14:00"}]
    ),
}


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditStore]:
    opened: AuditStore
    if request.param == "memory":
        opened = MemoryAuditStore()
    else:
        url = (
            request.getfixturevalue("postgres_url")
            if request.param == "postgres"
            else f"sqlite:///{tmp_path / 'audit.db'}"
        )
        sql = SqlAuditStore(make_engine(url))
        sql.create_schema()
        opened = sql
    yield opened
    opened.close()


@pytest.mark.parametrize("value", POISON.values(), ids=POISON.keys())
def test_a_message_the_store_cannot_take_is_refused_alone_on_every_store(
    value: bytes, store: AuditStore
) -> None:
    after = encode([{**RECORD, "record_id": "r-2"}], [], AT)[0]
    decoded = decode_all([(41, value), (42, after)])
    assert decoded.refused == 1
    done = index(store, decoded)  # a poison pill raised here, on SQL stores or all
    assert done.refused == 1
    kept = store.get("audit-topic-41-refused")
    assert kept is not None and kept["result"] == "refused"
    assert "\x00" not in orjson.dumps(kept).decode()  # nothing of the content
    assert store.get("r-2") is not None  # the records after it are indexed
    assert index(store, decode_all([(41, value), (42, after)])).new == 0  # a replay adds nothing


def test_records_and_feed_copies_the_router_writes_still_pass() -> None:
    """The checks refuse only what the router never writes: text columns, null ones, a
    covenant reference, subjects, feed copies with and without a place, produced notes."""
    record = {
        **RECORD,
        "object": "signal",
        "signal_id": "s-1",
        "origin": "leverancier",
        "recipient": None,
        "covenant": {"id": "c-1", "rule": "r-1"},
        "subjects": {"ean": "p-1"},
    }
    value = message(
        records=[record],
        feeds=[["x-1", "riec-nh", "k", "v", None, None], ["x-2", "riec-nh", "k", "v", 3, 2**40]],
        produced=[["x-1", 2**31 - 1, 2**63 - 1]],
    )
    decoded = decode_all([(7, value)])
    assert decoded.refused == 0
    store = MemoryAuditStore()
    assert index(store, decoded).new == 1
    assert store.get("r-1") == record


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_message_time_beyond_the_calendar_in_utc_is_taken_as_unknown(
    at: str, store: AuditStore
) -> None:
    """The message's own time only dates its feed copies; one with no UTC equivalent counts
    as no time (as an unreadable one always did), not as a reason to stop indexing."""
    value = message(at=at, records=[RECORD], feeds=[["x-1", "riec-nh", "k", "v", None, None]])
    decoded = decode_all([(41, value)])
    assert decoded.refused == 0
    assert index(store, decoded).new == 1
    [entry] = store.undelivered()
    assert entry.exchange_id == "x-1"
    assert abs(entry.created_at - datetime.now(UTC)) < timedelta(minutes=5)  # when indexed
