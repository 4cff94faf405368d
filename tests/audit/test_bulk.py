"""The driver-level write path (services/audit/bulk.py): what it writes is what SQLAlchemy
would have written, so everything read through SQLAlchemy sees the same values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import DateTime, func, select
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2

from services.audit import AuditStoreError
from services.audit.bulk import RECORD_COLUMNS, SqliteWriter, bulk_writer
from services.audit.reading import chain_records
from services.audit.rows import AUDIT_COLUMNS
from services.audit.store import SqlAuditStore
from services.audit.verify import verify
from services.database.engine import make_engine
from services.database.tables.audit import audit_records
from tests.audit.test_store import (  # sql_url: the fixture of a new SQLite/PostgreSQL database
    T0,
    decision_record,
    entry_for,
    sql_url,  # noqa: F401  # a fixture: pytest finds it by name
)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        datetime(2026, 11, 22, 12, 0, 0, 1, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_sqlite_timestamps_are_the_text_sqlalchemy_writes(moment: datetime):
    engine = make_engine("sqlite://")
    dialect = engine.dialect
    engine.dispose()
    sqlalchemy_writes = DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert sqlalchemy_writes is not None
    assert SqliteWriter(dialect).moment(moment) == sqlalchemy_writes(moment)


def test_the_record_columns_are_the_table_columns():
    assert set(RECORD_COLUMNS) == {column.name for column in audit_records.columns}
    assert RECORD_COLUMNS[: len(AUDIT_COLUMNS)] == AUDIT_COLUMNS


def test_written_timestamps_read_back_and_compare_through_sqlalchemy(
    sql_url: str,  # noqa: F811  # the imported fixture, by name
):
    store = SqlAuditStore.open(sql_url)
    at = T0 + timedelta(microseconds=250)
    records = [decision_record(n, at=at) for n in range(5)]  # decided at `at` + n s
    try:
        store.record(records, [entry_for(records[0], at=at)])
        engine = make_engine(sql_url)
        with engine.connect() as connection:
            stored = connection.execute(
                select(audit_records.c.timestamp).order_by(audit_records.c.seq)
            ).scalars()
            moments = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in stored]
            later = connection.execute(
                select(func.count())
                .select_from(audit_records)
                .where(audit_records.c.timestamp >= at + timedelta(seconds=2))
            ).scalar_one()
        engine.dispose()
        assert moments == [at + timedelta(seconds=n) for n in range(5)]
        assert later == 3
        (entry,) = store.undelivered()
        assert entry.created_at == at
    finally:
        store.close()


def test_postgresql_drivers_other_than_psycopg_are_refused():
    with pytest.raises(AuditStoreError, match=r"postgresql\+psycopg://"):
        bulk_writer(PGDialect_psycopg2(), "postgresql://schakel:***@db/audit")


def test_awkward_text_survives_the_driver_path(
    sql_url: str,  # noqa: F811  # the imported fixture, by name
):
    """Tabs, newlines, backslashes and non-ASCII in columns and bodies (COPY's text format
    escapes them) come back as written, and the chain over them verifies."""
    awkward = "tab\there\nnew line \\backslash\\ é 😀 \\N"
    record = {**decision_record(1), "origin": awkward, "reason": awkward}
    store = SqlAuditStore.open(sql_url)
    try:
        assert store.record([record], []) == 1
        assert store.get(record["record_id"]) == record
        assert store.count(origin=awkward) == 1
        result = verify(chain_records(store), [], {})
        assert result.ok, result.message
    finally:
        store.close()
