"""Every column a query, page or report reads is covered by verification: changing any of
them, or the subject index behind access requests, makes ``verify`` say NOT intact and name
the record (or the signed row) — on SQLite and on PostgreSQL.

The columns come from the schema (:data:`services.database.tables.audit.metadata`), not from a list
here, so a new column fails :func:`test_every_column_of_every_audit_table_is_classified` and
the tamper test until :data:`services.audit.index.COVERAGE` classifies it.
"""

from __future__ import annotations

import inspect
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, delete, insert, select, update
from typer.testing import CliRunner

from services.audit import queries, report
from services.audit.checkpoint import CheckpointPolicy
from services.audit.checkpointer import Checkpointer
from services.audit.index import COVERAGE, INDEX_COLUMNS
from services.audit.reading import IndexedReading
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryWitness
from services.audit.verification import verify_store
from services.audit.verify import Verification
from services.cli.audit import EXIT_FINDING
from services.cli.main import app as cli
from services.core.keys import SigningKey
from services.database.engine import make_engine
from services.database.tables.audit import audit_subjects, metadata
from tests.audit.test_store import T0, decision_record

SIGNER = SigningKey.from_private_bytes(bytes(range(32)), T0)  # a test key; id derived
PUBLIC = {SIGNER.key_id: SIGNER.public_key_bytes()}
RECORDS = 40
PURGED = 10
"""Records 1..10 are purged, so ``audit_purges`` has a row to tamper with."""
SERVICES = Path(__file__).resolve().parents[2] / "services"
TARGET_SEQ = 25
CHECKPOINT_SEQ = 30

COLUMNS = [
    (table.name, column.name) for table in metadata.sorted_tables for column in table.columns
]
CHECKED = [
    (table, column)
    for table, column in COLUMNS
    if COVERAGE.get(table, {}).get(column, "unclassified") != "not-audit"
]


@dataclass
class Log:
    engine: Engine
    store: SqlAuditStore
    witness: MemoryWitness
    target_id: str

    def verify(self) -> Verification:
        return verify_store(self.store, PUBLIC, witness=self.witness)


def build(url: str) -> Log:
    """40 decision records (two subjects each, about a third withheld), checkpoints every 10
    records (also in a witness), the oldest 10 purged behind a signed commitment."""
    witness = MemoryWitness()
    checkpointer = Checkpointer(SIGNER, witness, CheckpointPolicy(every_records=10))
    engine = make_engine(url)
    store = SqlAuditStore(engine, checkpointer)
    store.create_schema()
    made = [decision_record(n, delivered=n % 3 != 1) for n in range(RECORDS)]
    for start in range(0, RECORDS, 10):
        store.record(made[start : start + 10], [])
    assert store.purge(T0 + timedelta(seconds=PURGED)) is not None
    target = made[TARGET_SEQ - 1]
    assert target["result"] == "delivered" and target["subjects"]
    return Log(engine, store, witness, target["record_id"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path}/audit.db"
    built = build(url)
    yield built
    built.store.close()
    built.engine.dispose()


def _changed(value: Any) -> Any:
    """A different value of the same kind, as plausible as it gets."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, datetime):
        return value + timedelta(days=1)
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        return bytes([raw[0] ^ 1]) + raw[1:]
    if value is None:
        return "tampered"
    assert isinstance(value, str)
    return value + "-x"


def _where(table: Table) -> Any:
    column = table.c.seq
    if table.name == "audit_checkpoints":
        return column == CHECKPOINT_SEQ
    if table.name == "audit_purges":
        return column == PURGED
    return column == TARGET_SEQ


def _tamper(log: Log, table_name: str, column_name: str) -> tuple[set[int], str | None]:
    """Change ``column_name`` of one row of ``table_name``; the seqs (before and after) and,
    for a record, the record id that verification must name."""
    table = metadata.tables[table_name]
    column = table.c[column_name]
    with log.engine.begin() as connection:
        row = connection.execute(select(table).where(_where(table)).limit(1)).mappings().one()
        new = _changed(row[column_name])
        if table_name == "audit_records" and column_name == "seq":
            new = row["seq"] + 1000  # a free number, not the next record's
        keys = list(table.primary_key.columns)
        connection.execute(
            update(table).where(*[c == row[c.name] for c in keys]).values({column.name: new})
        )
    if table_name in ("audit_records", "audit_subjects"):
        return {TARGET_SEQ}, log.target_id
    return {int(row["seq"]), new if column_name == "seq" else int(row["seq"])}, None


def _names(result: Verification, seqs: set[int], record_id: str | None) -> bool:
    for finding in result.findings:
        if record_id is not None and finding.record_id == record_id:
            assert record_id in finding.message
            return True
        if finding.seq in seqs and f"seq {finding.seq}" in finding.message:
            return True
    return False


def test_every_column_of_every_audit_table_is_classified():
    for table in metadata.sorted_tables:
        classified = COVERAGE.get(table.name)
        assert classified is not None, f"classify table {table.name} in services.audit.index"
        assert set(classified) == {c.name for c in table.columns}, (
            f"classify every column of {table.name} in services.audit.index.COVERAGE"
        )
    assert set(INDEX_COLUMNS) == {
        name for name, cover in COVERAGE["audit_records"].items() if cover == "derived"
    } | {"record_id"}


def test_no_audit_query_reads_a_table_outside_verification():
    """Searches, reports, the pages and the CLI's queries read only tables verification
    covers."""
    outside = [name for name, columns in COVERAGE.items() if "not-audit" in columns.values()]
    sources = [inspect.getsource(queries), inspect.getsource(report)]
    for folder in ("web", "cli", "reid"):
        sources += [path.read_text() for path in (SERVICES / folder).glob("*.py")]
    for source in sources:
        for name in outside:
            assert name not in source, f"a query, page or report reads {name}"


def test_an_untouched_log_verifies_with_its_index(log: Log):
    result = log.verify()
    assert result.ok, result.message
    assert result.indexed == result.records == RECORDS - PURGED + 1  # and the purge record
    assert "searchable columns and subject index match" in result.message


@pytest.mark.parametrize(("table", "column"), CHECKED, ids=[f"{t}.{c}" for t, c in CHECKED])
def test_changing_any_column_a_query_reads_is_found(log: Log, table: str, column: str):
    assert COVERAGE.get(table, {}).get(column) in ("chain", "derived", "signed"), (
        f"{table}.{column} is not classified in services.audit.index.COVERAGE"
    )
    seqs, record_id = _tamper(log, table, column)
    result = log.verify()
    assert not result.ok, f"changing {table}.{column} went unnoticed: {result.message}"
    assert _names(result, seqs, record_id), result.to_json()


def test_deleting_a_records_subject_rows_is_found(log: Log):
    with log.engine.begin() as connection:
        connection.execute(delete(audit_subjects).where(audit_subjects.c.seq == TARGET_SEQ))
    result = log.verify()
    assert not result.ok
    first = result.first
    assert first is not None and first.kind == "index-mismatch"
    assert first.record_id == log.target_id and "subjects" in first.message


def test_adding_a_subject_row_to_a_record_is_found(log: Log):
    with log.engine.begin() as connection:
        connection.execute(insert(audit_subjects).values(pseudonym="S-other", seq=TARGET_SEQ))
    first = log.verify().first
    assert first is not None and (first.kind, first.record_id) == ("index-mismatch", log.target_id)


def test_subject_rows_of_no_record_are_found(log: Log):
    with log.engine.begin() as connection:
        connection.execute(insert(audit_subjects).values(pseudonym="S-ean-24", seq=5))
        connection.execute(insert(audit_subjects).values(pseudonym="S-ean-24", seq=10_000))
    result = log.verify()
    assert [(f.kind, f.seq) for f in result.findings] == [
        ("index-orphan", 5),
        ("index-orphan", 10_000),
    ]


def test_a_record_with_many_subject_rows_is_read_whole_across_pages(log: Log):
    with log.engine.begin() as connection:
        connection.execute(
            insert(audit_subjects),
            [{"pseudonym": f"S-extra-{n:03d}", "seq": TARGET_SEQ} for n in range(30)],
        )
    reading = IndexedReading(log.store, page=7)
    records = {r.seq: r for r in reading.records()}
    assert list(reading.orphans()) == []
    assert len(records) == RECORDS - PURGED + 1
    assert records[TARGET_SEQ].subjects is not None
    assert len(records[TARGET_SEQ].subjects) == 32
    result = log.verify()
    assert [(f.kind, f.record_id) for f in result.findings] == [("index-mismatch", log.target_id)]


# -- the issue's reproduction, through the CLI ------------------------------------------------


def test_the_recipient_rewrite_of_the_issue_is_found_by_schakel_audit_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))  # no witness of var/
    log = build(f"sqlite:///{tmp_path}/audit.db")
    log.store.close()
    log.engine.dispose()
    runner = CliRunner()
    database = f"sqlite:///{tmp_path}/audit.db"

    def found() -> int:
        result = runner.invoke(
            cli,
            [
                "audit",
                "search",
                "--database",
                database,
                "--recipient",
                "politie-nh",
                "--result",
                "delivered",
                "--format",
                "json",
                "--limit",
                "500",
            ],
        )
        assert result.exit_code == 0, result.output
        return result.output.count('"record_id"')

    before = found()
    assert before > 0
    with sqlite3.connect(tmp_path / "audit.db") as connection:
        connection.execute(
            "UPDATE audit_records SET recipient='riec-nh' "
            "WHERE recipient='politie-nh' AND result='delivered'"
        )
    assert found() == 0
    public = tmp_path / "hub.pem"
    public.write_text(SIGNER.public_key_pem())
    result = runner.invoke(
        cli, ["audit", "verify", "--database", database, "--public-key", str(public)]
    )
    assert result.exit_code == EXIT_FINDING, result.output
    assert "NOT intact" in result.output and "recipient differs" in result.output
    assert "riec-nh" not in result.output  # names the record, never the values


def test_a_log_written_while_it_is_verified_is_intact(log: Log):
    """Verification reads page by page while the hub appends: records and their subject rows
    come from one statement, orphans are looked for at the end, so nothing written meanwhile
    is taken for tampering."""
    stop = threading.Event()
    written: list[int] = []

    def append() -> None:
        n = RECORDS
        while not stop.is_set() and n < RECORDS + 2_000:
            batch = [decision_record(m) for m in range(n, n + 50)]
            written.append(log.store.record(batch, []))
            n += 50

    writer = threading.Thread(target=append)
    writer.start()
    try:
        results = [verify_store(log.store, PUBLIC, witness=log.witness) for _ in range(5)]
    finally:
        stop.set()
        writer.join(60)
    assert written, "the writer never wrote"
    assert all(result.ok for result in results), [r.message for r in results if not r.ok]
    final = log.verify()
    assert final.ok and final.records == final.indexed == RECORDS - PURGED + 1 + sum(written)
