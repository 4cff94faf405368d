"""Audit store: one behaviour suite for the SQL store (on a SQLite file and on a real
PostgreSQL server) and the memory double, then what only the SQL store has (engine settings,
transactions, locks, error messages, schema migrations)."""

from __future__ import annotations

import importlib.util
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, event, text

from services.audit import AUDIT_FILTERS, AuditStore, AuditStoreError, OutboxEntry
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditDatabase, MemoryAuditStore
from services.core.decision import Decision, Rejection, RuleRef, exchange_id, rejection_id
from services.core.records import audit_record, rejection_record
from services.database.engine import (
    DATABASE_URL_ENV,
    DEFAULT_DATABASE_URL,
    database_url,
    make_engine,
)
from services.database.errors import DatabaseError

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RULE = RuleRef("nh-drugs-2025", "3", "energy-to-police", "art. 5.2", "ondermijning")

Opener = Callable[[], AuditStore]


def decision_record(
    n: int,
    *,
    recipient: str = "politie-nh",
    source: str = "liander",
    delivered: bool = True,
    subjects: dict[str, str] | None = None,
    at: datetime = T0,
) -> dict[str, Any]:
    """The audit record of decision ``n``, built by the core like the router does."""
    signal_id = f"{source}-{n:06d}"
    subjects = {"ean": f"S-ean-{n}", "address": f"S-adr-{n}"} if subjects is None else subjects
    decision = Decision(
        exchange_id=exchange_id(source, signal_id, recipient),
        signal_id=signal_id,
        source=source,
        signal_type="energy.consumption_anomaly.v1",
        recipient=recipient,
        result="delivered" if delivered else "withheld",
        decided_at=at + timedelta(seconds=n),
        rule=RULE if delivered else None,
        reason=None if delivered else "no rule shares this signal with the recipient",
        disclosed={"ean": "pseudonymise", "score": "generalise:band"} if delivered else {},
        withheld_fields=("kwh_observed",),
        pseudonyms={"ean": f"P-{recipient}-{n}"} if delivered else {},
        subjects=subjects,
        retention_days=180 if delivered else None,
    )
    return audit_record(decision, actor="schakel-router")


def rejected_record(n: int) -> dict[str, Any]:
    rejection = Rejection(
        rejection_id=rejection_id("liander", f"bad-{n}"),
        signal_id=f"bad-{n}",
        source="liander",
        code="schema",
        reason="data.score: not a number",
        decided_at=T0,
    )
    return rejection_record(rejection, actor="schakel-router")


def entry_for(record: dict[str, Any], *, at: datetime = T0) -> OutboxEntry:
    return OutboxEntry(
        exchange_id=record["record_id"],
        recipient=record["recipient"],
        key=f"P-{record['record_id']}".encode(),
        value=b'{"exchange_id": "%s"}' % record["record_id"].encode(),
        created_at=at,
    )


def ids(entries: list[OutboxEntry]) -> list[str]:
    return [entry.exchange_id for entry in entries]


def sqlite_opener(path: Path, *, busy_timeout_ms: int = 15_000) -> Opener:
    url = f"sqlite:///{path}"

    def open_store() -> AuditStore:
        store = SqlAuditStore(make_engine(url, busy_timeout_ms=busy_timeout_ms))
        store.create_schema()
        return store

    return open_store


def memory_opener() -> Opener:
    database = MemoryAuditDatabase()
    return lambda: MemoryAuditStore(database)


def url_opener(url: str) -> Opener:
    def open_store() -> AuditStore:
        store = SqlAuditStore(make_engine(url))
        store.create_schema()
        return store

    return open_store


STORE_KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
"""The stores the behaviour suite runs on; ``postgres`` is a fresh database on the session's
real PostgreSQL server (tests/postgres_fixtures.py)."""


@pytest.fixture(params=STORE_KINDS)
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a store on one database; calling it again is reopening that database."""
    if request.param == "memory":
        return memory_opener()
    if request.param == "postgres":
        return url_opener(request.getfixturevalue("postgres_url"))
    return sqlite_opener(tmp_path / "db" / "audit.db")


@pytest.fixture
def store(opener: Opener) -> Iterator[AuditStore]:
    opened = opener()
    yield opened
    opened.close()


# -- recording: idempotent, atomic ------------------------------------------------------------


def test_record_counts_new_records_and_skips_known_ones(store: AuditStore):
    first = [decision_record(n) for n in range(3)]
    assert store.record(first, []) == 3
    assert store.record(first, []) == 0
    assert store.record([*first, decision_record(3)], []) == 1
    assert store.count() == 4


def test_a_record_repeated_inside_one_batch_is_stored_once(store: AuditStore):
    record = decision_record(1)
    assert store.record([record, record, decision_record(2), record], []) == 2
    assert store.count() == 2


def test_new_records_are_counted_right_across_large_batches(store: AuditStore):
    """More rows than one multi-row statement takes, half of them already stored."""
    records = [decision_record(n, subjects={}) for n in range(1_200)]
    assert store.record(records[::2], []) == 600
    assert store.record(records, []) == 600
    assert store.count() == 1_200


def test_get_returns_the_record_as_written(store: AuditStore):
    record = decision_record(7)
    rejected = rejected_record(1)
    store.record([record, rejected], [])
    assert store.get(record["record_id"]) == record
    assert store.get(rejected["record_id"]) == rejected
    assert store.get("no-such-record") is None


def test_a_bad_record_mid_batch_leaves_nothing(store: AuditStore):
    good = [decision_record(n) for n in range(3)]
    bad = dict(decision_record(3))
    del bad["record_id"]
    with pytest.raises(AuditStoreError, match="no record_id"):
        store.record([*good, bad, decision_record(4)], [entry_for(good[0])])
    assert store.count() == 0
    assert store.records() == []
    assert store.undelivered() == []
    assert store.records_for_subject("S-ean-0") == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2026-11-22T12:00:00"}, "time zone"),
        ({"result": None}, "action or result"),
        ({"subjects": ["S-1"]}, "subjects"),
        ({"fields": {1: "keep"}}, "not JSON-serialisable"),
        ({"fields": {"ean": {1, 2}}}, "not JSON-serialisable"),
    ],
)
def test_records_that_cannot_be_stored_are_refused(store: AuditStore, change, message):
    record = {**decision_record(1), **change}
    with pytest.raises(AuditStoreError, match=message):
        store.record([decision_record(0), record], [])
    assert store.count() == 0


def test_refusals_never_quote_record_contents(store: AuditStore):
    record = {**decision_record(1), "fields": {"ean": {"S-secret-ish"}}}
    with pytest.raises(AuditStoreError) as raised:
        store.record([record], [])
    assert "S-secret-ish" not in str(raised.value)
    assert "S-ean-1" not in str(raised.value)


def test_naive_datetimes_are_refused(store: AuditStore):
    record = decision_record(1)
    naive = replace(entry_for(record), created_at=datetime(2026, 11, 22, 12, 0))
    with pytest.raises(AuditStoreError, match="time zone"):
        store.record([record], [naive])
    with pytest.raises(AuditStoreError, match="time zone"):
        store.purge_consumed(datetime(2026, 11, 22))
    assert store.count() == 0


# -- reading -----------------------------------------------------------------------------------


def test_records_come_in_insertion_order_with_increasing_seq(store: AuditStore):
    written = [decision_record(n) for n in (5, 1, 9, 3)]
    store.record(written[:2], [])
    store.record(written, [])  # two known, two new
    listed = store.records()
    assert [record for _, record in listed] == written
    seqs = [seq for seq, _ in listed]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert all(seq > 0 for seq in seqs)


def test_records_page_by_seq(store: AuditStore):
    store.record([decision_record(n) for n in range(25)], [])
    pages: list[list[tuple[int, dict[str, Any]]]] = []
    after = 0
    while page := store.records(after_seq=after, limit=10):
        pages.append(page)
        after = page[-1][0]
    assert [len(page) for page in pages] == [10, 10, 5]
    assert [record for page in pages for _, record in page] == [r for _, r in store.records()]


def test_limits_below_one_are_refused(store: AuditStore):
    for read in (
        lambda: store.records(limit=0),
        lambda: store.records_for_subject("S", limit=0),
        lambda: store.undelivered(limit=-1),
    ):
        with pytest.raises(AuditStoreError, match="limit"):
            read()


def test_count_filters_by_indexed_columns(store: AuditStore):
    store.record(
        [
            decision_record(1, recipient="politie-nh"),
            decision_record(1, recipient="riec-nh", delivered=False),
            decision_record(2, recipient="riec-nh"),
            decision_record(3, source="stedin"),
            rejected_record(1),
        ],
        [],
    )
    assert store.count() == 5
    assert store.count(result="delivered") == 3
    assert store.count(result="withheld", action="withhold") == 1
    assert store.count(action="reject") == 1
    assert store.count(recipient="riec-nh") == 2
    assert store.count(origin="stedin") == 1
    assert store.count(origin="liander", result="delivered") == 2
    assert store.count(object="energy.consumption_anomaly.v1") == 4
    assert store.count(covenant_id="nh-drugs-2025", rule_id="energy-to-police") == 3
    assert store.count(signal_id="liander-000001") == 2
    assert store.count(recipient="nobody") == 0


def test_count_refuses_unknown_filters(store: AuditStore):
    with pytest.raises(AuditStoreError, match="reason") as raised:
        store.count(reason="x")
    assert all(name in str(raised.value) for name in AUDIT_FILTERS)


def test_records_are_found_by_subject_pseudonym(store: AuditStore):
    store.record(
        [
            decision_record(1, subjects={"ean": "S-A", "address": "S-B"}),
            decision_record(2, subjects={"ean": "S-C"}),
            decision_record(3, subjects={"ean": "S-A", "meter.ean": "S-A"}),
            rejected_record(1),
        ],
        [],
    )
    found = store.records_for_subject("S-A")
    assert [record["signal_id"] for _, record in found] == ["liander-000001", "liander-000003"]
    assert [record["signal_id"] for _, record in store.records_for_subject("S-B")] == [
        "liander-000001"
    ]
    assert store.records_for_subject("S-unknown") == []
    first_seq = found[0][0]
    assert [seq for seq, _ in store.records_for_subject("S-A", after_seq=first_seq)] == [
        found[1][0]
    ]
    assert store.records_for_subject("S-A", limit=1) == found[:1]


def test_a_replayed_record_does_not_change_its_subjects(store: AuditStore):
    """After a key rotation a replay may carry other pseudonyms; the stored record wins."""
    store.record([decision_record(1, subjects={"ean": "S-old"})], [])
    store.record([decision_record(1, subjects={"ean": "S-new"})], [])
    assert len(store.records_for_subject("S-old")) == 1
    assert store.records_for_subject("S-new") == []


# -- the outbox ----------------------------------------------------------------------------------


def test_outbox_entries_are_stored_once_and_come_back_whole(store: AuditStore):
    records = [decision_record(n) for n in range(3)]
    entries = [entry_for(r) for r in records]
    cet = timezone(timedelta(hours=1))
    entries[1] = replace(entries[1], created_at=(T0 + timedelta(minutes=1)).astimezone(cet))
    store.record(records, entries)
    store.record(records, entries)  # replay after a crash
    undelivered = store.undelivered()
    assert ids(undelivered) == ids(entries)
    assert undelivered[0] == entries[0]
    assert undelivered[1].created_at == T0 + timedelta(minutes=1)
    assert undelivered[1].created_at.tzinfo is UTC
    assert undelivered[2].key == entries[2].key
    assert undelivered[2].value == entries[2].value


def test_outbox_keeps_insertion_order_not_id_order(store: AuditStore):
    records = [decision_record(n) for n in range(6)]
    entries = sorted((entry_for(r) for r in records), key=lambda e: e.exchange_id, reverse=True)
    store.record(records, entries)
    assert ids(store.undelivered()) == ids(entries)


def test_undelivered_filters_by_recipient_and_limits(store: AuditStore):
    records = [decision_record(n, recipient=("riec-nh", "politie-nh")[n % 2]) for n in range(6)]
    store.record(records, [entry_for(r) for r in records])
    riec = store.undelivered("riec-nh")
    assert [e.recipient for e in riec] == ["riec-nh"] * 3
    assert ids(store.undelivered(limit=2)) == [r["record_id"] for r in records[:2]]
    assert store.undelivered("nobody") == []


def test_produced_then_consumed_entries_leave_undelivered(store: AuditStore):
    records = [decision_record(n) for n in range(5)]
    store.record(records, [entry_for(r) for r in records])
    rid = [r["record_id"] for r in records]
    # records 0-2 in partition 0 at offsets 10-12; record 3 in partition 1; record 4 unproduced
    store.mark_produced([(rid[0], 0, 10), (rid[1], 0, 11), (rid[2], 0, 12), (rid[3], 1, 10)])
    produced = {e.exchange_id: (e.partition, e.offset) for e in store.undelivered()}
    assert produced == {rid[0]: (0, 10), rid[1]: (0, 11), rid[2]: (0, 12), rid[3]: (1, 10),
                        rid[4]: (None, None)}  # fmt: skip
    # the committed offset is the next one to read: 12 means 10 and 11 are consumed
    assert store.mark_consumed("politie-nh", 0, 12) == 2
    assert store.mark_consumed("politie-nh", 0, 12) == 0
    assert store.mark_consumed("riec-nh", 0, 100) == 0
    assert ids(store.undelivered()) == rid[2:]
    assert store.mark_consumed("politie-nh", 1, 11) == 1
    assert store.mark_consumed("politie-nh", 0, 1_000) == 1
    assert ids(store.undelivered()) == [rid[4]]  # never produced, so never consumed


def test_a_consumed_entry_stays_consumed_when_produced_again(store: AuditStore):
    record = decision_record(1)
    store.record([record], [entry_for(record)])
    store.mark_produced([(record["record_id"], 0, 5)])
    assert store.mark_consumed("politie-nh", 0, 6) == 1
    store.mark_produced([(record["record_id"], 0, 0)])  # replayed batch produced it again
    assert store.undelivered() == []
    assert store.mark_consumed("politie-nh", 0, 6) == 0


def test_entries_produced_again_after_broker_loss_get_their_new_offsets(store: AuditStore):
    records = [decision_record(n) for n in range(3)]
    store.record(records, [entry_for(r) for r in records])
    rid = [r["record_id"] for r in records]
    store.mark_produced([(rid[0], 0, 40), (rid[1], 0, 41), (rid[2], 0, 42)])
    assert store.mark_consumed("politie-nh", 0, 41) == 1
    # the embedded broker restarted empty: topics are new, offsets start at 0 again
    again = store.undelivered()
    assert ids(again) == rid[1:]
    store.mark_produced([(e.exchange_id, 0, offset) for offset, e in enumerate(again)])
    assert store.mark_consumed("politie-nh", 0, 1) == 1
    assert ids(store.undelivered()) == [rid[2]]


def test_unconsumed_outside_lists_what_a_broker_that_lost_data_no_longer_holds(
    store: AuditStore,
):
    records = [decision_record(n) for n in range(7)]
    records.append(decision_record(7, recipient="riec-nh"))
    store.record(records, [entry_for(r) for r in records])
    rid = [r["record_id"] for r in records]
    # partition 0 holds offsets 0-9 now; 1 holds 0-4; partition 2 is gone (fewer partitions)
    store.mark_produced([(rid[0], 0, 3), (rid[1], 0, 10), (rid[2], 1, 4), (rid[3], 1, 5)])
    store.mark_produced([(rid[4], 2, 0), (rid[5], 0, 9), (rid[7], 0, 50)])
    assert store.mark_consumed("politie-nh", 0, 4) == 1  # rid[0]: consumed, never re-delivered
    ends = {0: 10, 1: 5}
    lost = store.unconsumed_outside("politie-nh", ends)
    # at/past the end (1, 3), in a missing partition (4), never marked produced (6); oldest first
    assert ids(lost) == [rid[1], rid[3], rid[4], rid[6]]
    assert ids(store.unconsumed_outside("politie-nh", ends, limit=2)) == [rid[1], rid[3]]
    assert ids(store.unconsumed_outside("riec-nh", ends)) == [rid[7]]  # one recipient only
    # a topic created empty (the broker lost everything): every unconsumed entry
    assert ids(store.unconsumed_outside("politie-nh", {0: 0, 1: 0})) == rid[1:7]
    assert ids(store.unconsumed_outside("politie-nh", {})) == rid[1:7]
    # a broker that kept everything: only the never-produced one
    assert ids(store.unconsumed_outside("politie-nh", {0: 11, 1: 6, 2: 1})) == [rid[6]]


def test_mark_produced_ignores_unknown_exchange_ids(store: AuditStore):
    store.mark_produced([("no-such-exchange", 0, 1)])
    store.mark_produced([])
    assert store.undelivered() == []


def test_purge_removes_only_consumed_entries_created_before(store: AuditStore):
    records = [decision_record(n) for n in range(4)]
    entries = [entry_for(r, at=T0 + timedelta(hours=n)) for n, r in enumerate(records)]
    store.record(records, entries)
    store.mark_produced([(e.exchange_id, 0, n) for n, e in enumerate(entries[:3])])
    assert store.mark_consumed("politie-nh", 0, 3) == 3
    assert store.purge_consumed(T0 + timedelta(hours=1)) == 1  # entry 0 only
    assert store.purge_consumed(T0 + timedelta(hours=1)) == 0
    assert store.purge_consumed(T0 + timedelta(days=1)) == 2  # entries 1 and 2
    assert ids(store.undelivered()) == [entries[3].exchange_id]  # unconsumed: kept
    assert store.count() == 4  # audit records are never purged with the outbox


def test_outbox_entries_without_bytes_are_refused(store: AuditStore):
    record = decision_record(1)
    bad = replace(entry_for(record), value="text")  # type: ignore[arg-type]
    with pytest.raises(AuditStoreError, match="bytes"):
        store.record([record], [bad])
    assert store.count() == 0


# -- lifecycle and concurrency -------------------------------------------------------------------


def test_reopening_keeps_everything(opener: Opener):
    first = opener()
    records = [decision_record(n) for n in range(3)]
    first.record(records, [entry_for(r) for r in records])
    first.mark_produced([(records[0]["record_id"], 0, 0)])
    first.mark_consumed("politie-nh", 0, 1)
    last_seq = first.records()[-1][0]
    first.close()
    first.close()  # closing twice is harmless
    with pytest.raises(AuditStoreError, match="closed"):
        first.count()

    second = opener()
    try:
        assert [r for _, r in second.records()] == records
        assert ids(second.undelivered()) == [r["record_id"] for r in records[1:]]
        assert len(second.records_for_subject("S-ean-2")) == 1
        assert second.record(records, []) == 0
        assert second.record([decision_record(9)], []) == 1
        assert second.records()[-1][0] > last_seq
    finally:
        second.close()


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "two-stores"])
def test_concurrent_writers_do_not_fail_or_lose_records(opener: Opener, shared: bool):
    """Two threads writing, through one store or two (on SQLite: two engines, one file)."""
    stores = [opener()] if shared else [opener(), opener()]
    per_thread, batch = 30, 20

    def write(worker: int) -> None:
        target = stores[worker % len(stores)]
        for b in range(per_thread):
            base = (worker * per_thread + b) * batch
            records = [decision_record(base + n) for n in range(batch)]
            target.record(records, [entry_for(r) for r in records])
            target.mark_produced([(r["record_id"], worker, base) for r in records])

    with ThreadPoolExecutor(max_workers=2) as pool:
        running = [pool.submit(write, worker) for worker in range(2)]
    try:
        for done in running:
            done.result()  # re-raises whatever the thread raised
        total = 2 * per_thread * batch
        assert stores[0].count() == total
        seqs = [seq for seq, _ in stores[0].records(limit=total + 1)]
        assert len(seqs) == total
        assert seqs == sorted(set(seqs))
        assert len(stores[0].undelivered(limit=total + 1)) == total
    finally:
        for opened in stores:
            opened.close()


# -- the memory double behaves like SQL, for any sequence of batches -------------------------------

_batches = st.lists(
    st.lists(st.integers(min_value=0, max_value=30), max_size=12),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_batches)
def test_memory_and_sqlite_agree_on_any_batches(batches: list[list[int]]):
    stores: list[AuditStore] = [MemoryAuditStore(), SqlAuditStore.open("sqlite://")]
    try:
        seen: set[int] = set()
        for numbers in batches:
            records = [decision_record(n, subjects={"ean": f"S-{n % 4}"}) for n in numbers]
            entries = [entry_for(r) for r in records]
            new = [s.record(records, entries) for s in stores]
            assert new == [len(set(numbers) - seen)] * 2
            seen.update(numbers)
        first_seen = list(dict.fromkeys(n for numbers in batches for n in numbers))
        expected = [decision_record(n, subjects={"ean": f"S-{n % 4}"}) for n in first_seen]
        for opened in stores:
            assert [r for _, r in opened.records()] == expected
            assert ids(opened.undelivered()) == [r["record_id"] for r in expected]
            for subject in range(4):
                assert [r["signal_id"] for _, r in opened.records_for_subject(f"S-{subject}")] == [
                    r["signal_id"] for r in expected if r["subjects"]["ean"] == f"S-{subject}"
                ]
    finally:
        for opened in stores:
            opened.close()


# -- SQL specifics ---------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database: a SQLite file, or one on the PostgreSQL server."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path}/audit.db"


def test_sqlite_engine_is_tuned_for_a_multithreaded_writer(tmp_path: Path):
    path = tmp_path / "nested" / "dir" / "audit.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=1234)
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 1234
        assert path.parent.is_dir()
        assert engine.pool.size() >= 4  # type: ignore[attr-defined]
    finally:
        engine.dispose()


def test_database_url_comes_from_argument_environment_or_default(monkeypatch, tmp_path: Path):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    assert database_url() == f"sqlite:///{tmp_path}/state/audit.db"  # the state directory's
    monkeypatch.delenv("SCHAKEL_STATE_DIR")
    assert database_url() == DEFAULT_DATABASE_URL == "sqlite:///var/audit.db"
    url = f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv(DATABASE_URL_ENV, url)
    assert database_url() == url
    assert database_url("sqlite://") == "sqlite://"
    engine = make_engine()
    try:
        assert engine.url.database == f"{tmp_path}/env.db"
    finally:
        engine.dispose()


def test_sqlite_writes_take_the_write_lock_when_they_begin(tmp_path: Path):
    """A deferred transaction could fail at once on upgrading to a writer, busy timeout or not."""
    engine = make_engine(f"sqlite:///{tmp_path}/audit.db")
    store = SqlAuditStore(engine)
    store.create_schema()
    begins: list[str] = []

    def note_begin(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("BEGIN"):
            begins.append(statement)

    event.listen(engine, "before_cursor_execute", note_begin)
    store.record([decision_record(1)], [])
    store.mark_consumed("politie-nh", 0, 1)
    store.count()
    store.records()
    assert begins == ["BEGIN IMMEDIATE", "BEGIN IMMEDIATE", "BEGIN", "BEGIN"]
    store.close()


def test_a_failure_inside_the_transaction_rolls_back_everything(tmp_path: Path):
    """The database refuses the outbox insert, after the audit rows went in: none stay."""
    path = tmp_path / "audit.db"
    store = sqlite_opener(path)()
    saboteur = sqlite3.connect(path, isolation_level=None)
    saboteur.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON feed_outbox "
        "BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    records = [decision_record(n) for n in range(3)]
    try:
        with pytest.raises(AuditStoreError, match="refused"):
            store.record(records, [entry_for(records[0])])
        assert store.count() == 0
        assert store.records_for_subject("S-ean-0") == []
    finally:
        saboteur.execute("DROP TRIGGER refuse")
        saboteur.close()
    assert store.record(records, [entry_for(records[0])]) == 3
    store.close()


@pytest.mark.postgres
def test_a_failure_inside_the_transaction_rolls_back_everything_on_postgresql(postgres_url: str):
    """The same on PostgreSQL, where the audit rows went in under the table lock."""
    store = url_opener(postgres_url)()
    saboteur = create_engine(postgres_url)
    with saboteur.begin() as connection:
        connection.execute(
            text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse BEFORE INSERT ON feed_outbox "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )
    records = [decision_record(n) for n in range(3)]
    try:
        with pytest.raises(AuditStoreError, match="refused"):
            store.record(records, [entry_for(records[0])])
        assert store.count() == 0
        assert store.records_for_subject("S-ean-0") == []
    finally:
        with saboteur.begin() as connection:
            connection.execute(text("DROP TRIGGER refuse ON feed_outbox"))
        saboteur.dispose()
    assert store.record(records, [entry_for(records[0])]) == 3
    assert [record for _, record in store.records()] == records
    store.close()


def test_a_locked_database_names_the_problem_and_the_fix(tmp_path: Path):
    path = tmp_path / "audit.db"
    store = sqlite_opener(path, busy_timeout_ms=50)()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(AuditStoreError, match="locked") as raised:
            store.record([decision_record(1)], [])
        assert "busy_timeout_ms" in str(raised.value)
        assert raised.value.__cause__ is None  # the SQL error is not chained
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.record([decision_record(1)], []) == 1
    store.close()


def test_missing_tables_name_create_schema(sql_url: str):
    store = SqlAuditStore(make_engine(sql_url))
    with pytest.raises(DatabaseError, match="create_schema"):
        store.count()
    store.close()


def test_an_unopenable_database_names_the_problem(tmp_path: Path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(DatabaseError, match="directory"):
        make_engine(f"sqlite:///{tmp_path}/file/audit.db")


def test_an_unparseable_url_is_not_repeated():
    with pytest.raises(DatabaseError, match="not a valid") as raised:
        make_engine("not a url, password hunter2")
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://schakel:hunter2@db/audit", "not supported"),
        ("postgresql+asyncpg://schakel:hunter2@db/audit", "driver"),
    ],
)
def test_unusable_urls_are_refused_with_the_password_masked(url: str, message: str):
    with pytest.raises(DatabaseError, match=message) as raised:
        make_engine(url)
    assert "hunter2" not in str(raised.value)
    assert "***" in str(raised.value)


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is not None, reason="psycopg installed")
def test_postgresql_without_its_driver_names_the_package_to_install():
    with pytest.raises(DatabaseError, match="install psycopg") as raised:
        make_engine("postgresql+psycopg://schakel:hunter2@db/audit")
    assert "hunter2" not in str(raised.value)


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is None, reason="psycopg not installed")
def test_postgresql_engines_connect_lazily_and_mask_the_password():
    engine = make_engine("postgresql+psycopg://schakel:hunter2@db/audit")
    try:
        assert SqlAuditStore(engine).url == "postgresql+psycopg://schakel:***@db/audit"
    finally:
        engine.dispose()


def test_in_memory_sqlite_is_shared_between_threads():
    store = SqlAuditStore.open("sqlite://")
    thread = threading.Thread(target=store.record, args=([decision_record(1)], []))
    thread.start()
    thread.join()
    assert store.count() == 1
    store.close()


# -- schema migrations (services/database/migrations) --------------------------------------------------


def schema_differences(url: str) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the metadata."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from services.database.tables import TARGET_METADATA

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, list(TARGET_METADATA)))
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    from services.database.migrate import current_revision

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()


def test_the_migrated_schema_is_exactly_the_metadata(sql_url: str):
    from services.database.migrate import head_revision

    SqlAuditStore.open(sql_url).close()
    assert schema_differences(sql_url) == []
    assert revision_of(sql_url) == head_revision()


def test_migrations_go_down_and_up_with_the_alembic_command(sql_url: str):
    """env.py without a handed-over connection: what `alembic -c services/database/alembic.ini`
    does."""
    from alembic import command

    from services.database.migrate import alembic_config

    config = alembic_config()
    config.set_main_option("sqlalchemy.url", sql_url)
    command.upgrade(config, "head")
    assert schema_differences(sql_url) == []
    command.downgrade(config, "base")
    assert revision_of(sql_url) is None
    added = {diff[1].name for diff in schema_differences(sql_url) if diff[0] == "add_table"}
    assert added == {
        "audit_records",
        "audit_checkpoints",
        "audit_subjects",
        "feed_outbox",
        "audit_purges",
        "web_users",
        "web_user_scopes",
        "access_log",
        "reid_requests",
        "reid_events",
        "web_sessions",
        "integrity_runs",
        "stacking_locations",
        "stacking_evidence",
        "stacking_aliases",
        "stacking_alerts",
        "gateway_tokens",
        "coverage_facts",
        "gateway_accepted",
        "web_sign_in_throttle",
        "outcome_signals",
        "outcome_signal_locations",
        "outcome_events",
        "outcome_event_locations",
        "outcome_approvals",
        "riec_items",
        "riec_item_events",
        "riec_cases",
        "riec_case_entries",
        "riec_barriers",
        "riec_audit_pending",
        "riec_handovers",
    }
    command.upgrade(config, "head")
    store = SqlAuditStore.open(sql_url)
    assert store.record([decision_record(1)], []) == 1
    store.close()


def test_a_database_from_before_migrations_is_adopted_with_its_records(sql_url: str):
    """Made by ``metadata.create_all`` as the store did before migrations: stamped, not
    recreated; its records, chain and outbox stay as they were."""
    from services.database.tables.audit import audit_purges, metadata

    engine = make_engine(sql_url)
    older = [table for table in metadata.sorted_tables if table is not audit_purges]
    metadata.create_all(engine, tables=older)  # audit_purges came with revision 0002
    old = SqlAuditStore(engine)
    records = [decision_record(n) for n in range(5)]
    old.record(records, [entry_for(records[0])])
    chain = old.chain()
    old.close()
    assert revision_of(sql_url) is None

    store = SqlAuditStore.open(sql_url)
    try:
        assert store.chain() == chain
        assert [record for _, record in store.records()] == records
        assert ids(store.undelivered()) == [records[0]["record_id"]]
        assert store.record([decision_record(5)], []) == 1
        assert [r.prev_seq for r in store.chain()] == list(range(6))
    finally:
        store.close()
    from services.database.migrate import head_revision

    assert revision_of(sql_url) == head_revision()
    assert schema_differences(sql_url) == []


def test_hubs_starting_together_both_get_the_schema(sql_url: str):
    """Two stores create the schema of one new database at the same time: one migrates, the
    other waits for it and finds the schema up to date."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        opened = list(pool.map(lambda _: SqlAuditStore.open(sql_url), range(2)))
    try:
        assert opened[0].record([decision_record(1)], []) == 1
        assert opened[1].count() == 1
    finally:
        for store in opened:
            store.close()
    assert schema_differences(sql_url) == []


def test_a_database_migrated_by_a_newer_version_is_refused(sql_url: str):
    SqlAuditStore.open(sql_url).close()
    engine = create_engine(sql_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    with pytest.raises(DatabaseError, match="9999_future") as raised:
        SqlAuditStore.open(sql_url)
    assert "newer version" in str(raised.value)


def test_web_and_reid_tables_made_by_create_all_before_0003_are_kept(sql_url: str):
    """The web and re-identification modules made their tables with ``create_all`` before
    revision 0003: the migration keeps them and their rows, and creates only what is missing."""
    from services.database.migrate import head_revision
    from services.reid import store as reid_store
    from services.web.users import UserStore

    engine = make_engine(sql_url)
    users = UserStore(engine, kdf_cost=8)
    users.create_schema()
    users.add("pia", "correct horse battery", "admin")
    engine.dispose()

    SqlAuditStore.open(sql_url).close()
    assert revision_of(sql_url) == head_revision()
    assert schema_differences(sql_url) == []
    engine = make_engine(sql_url)
    try:
        assert UserStore(engine, kdf_cost=8).get("pia") is not None
        reid_store.create_schema(engine)  # still harmless on a migrated database
        users.create_schema()
    finally:
        engine.dispose()
    assert schema_differences(sql_url) == []


def test_stored_records_and_unproduced_answer_for_a_resent_batch(store: AuditStore):
    """What the router looks up for re-sent signals (services/router/resend.py)."""
    records = [decision_record(n) for n in range(3)]
    entries = [entry_for(r) for r in records]
    store.record(records, entries)
    ids = [str(r["record_id"]) for r in records]
    found = store.stored_records([*ids, "not-stored"])
    assert set(found) == set(ids)
    assert found[ids[0]] == store.get(ids[0])
    assert store.unproduced([*ids, "not-stored"]) == dict(zip(ids, entries, strict=True))
    store.mark_produced([(ids[0], 0, 5), (ids[1], 0, 6)])
    store.mark_consumed(entries[1].recipient, 0, 7)
    assert set(store.unproduced(ids)) == {ids[2]}
    assert store.stored_records([]) == {}
    many = [f"id-{n}" for n in range(1_200)]  # more than one IN list
    assert store.stored_records([*many, ids[1]]) == {ids[1]: found[ids[1]]}
