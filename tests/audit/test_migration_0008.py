"""Revision 0008 (services/database/migrations/versions/0008_audit_indexes.py) on a database with
records: the two unused indexes and the subject index's foreign key go, every row stays, the
subject index still answers and is still purged, and the downgrade puts everything back."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

from services.audit.store import SqlAuditStore
from services.database.engine import make_engine
from services.database.migrate import alembic_config
from tests.audit.test_store import decision_record

DROPPED = {"ix_audit_records_result", "ix_audit_records_signal_id"}
KEPT = {
    "ix_audit_records_timestamp",
    "ix_audit_records_origin",
    "ix_audit_records_recipient",
    "ix_audit_records_object",
    "ix_audit_records_covenant",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        found: str = request.getfixturevalue("postgres_url")
        return found
    return f"sqlite:///{tmp_path}/audit.db"


@pytest.fixture
def config(url: str) -> Config:
    """Alembic on ``url``, at revision 0007 with 12 records (2 subjects each) written."""
    configured = alembic_config()
    configured.set_main_option("sqlalchemy.url", url)
    command.upgrade(configured, "0007")
    store = SqlAuditStore(make_engine(url))
    try:
        store.record([decision_record(n) for n in range(12)], [])
    finally:
        store.close()
    return configured


def shape(url: str) -> tuple[set[str], list[str], int, int]:
    """Index names of ``audit_records``, the tables ``audit_subjects`` refers to, and the row
    counts of both tables."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = inspect(connection)
            indexes = {index["name"] or "" for index in found.get_indexes("audit_records")}
            referred = [key["referred_table"] for key in found.get_foreign_keys("audit_subjects")]
            records = connection.execute(text("SELECT count(*) FROM audit_records")).scalar_one()
            subjects = connection.execute(text("SELECT count(*) FROM audit_subjects")).scalar_one()
    finally:
        engine.dispose()
    return indexes, referred, int(records), int(subjects)


def test_0008_drops_the_unused_indexes_and_the_key_and_keeps_every_row(
    url: str, config: Config
) -> None:
    indexes, referred, records, subjects = shape(url)
    assert indexes >= DROPPED | KEPT
    assert referred == ["audit_records"]
    assert (records, subjects) == (12, 24)

    command.upgrade(config, "0008")

    indexes, referred, records, subjects = shape(url)
    assert indexes & DROPPED == set()
    assert indexes >= KEPT
    assert referred == []
    assert (records, subjects) == (12, 24)
    store = SqlAuditStore.open(url)
    try:
        assert [seq for seq, _ in store.records_for_subject("S-ean-3")] == [4]
        assert store.record([decision_record(12)], []) == 1
        assert [seq for seq, _ in store.records_for_subject("S-adr-12")] == [13]
    finally:
        store.close()


def test_0008_keeps_the_sqlite_subject_index_without_rowid(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/audit.db"
    configured = alembic_config()
    configured.set_main_option("sqlalchemy.url", url)
    command.upgrade(configured, "0007")
    command.upgrade(configured, "0008")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            ddl = connection.execute(
                text("SELECT sql FROM sqlite_master WHERE name = 'audit_subjects'")
            ).scalar_one()
            index = connection.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'ix_audit_subjects_seq'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert "WITHOUT ROWID" in ddl.upper()
    assert "REFERENCES" not in ddl.upper()
    assert index == 1


def test_0008_goes_down_again_and_drops_orphaned_subject_rows(url: str, config: Config) -> None:
    command.upgrade(config, "0008")
    engine = make_engine(url)
    with engine.begin() as connection:  # tampering: a record deleted behind the store's back
        connection.execute(text("DELETE FROM audit_records WHERE seq = 5"))
    engine.dispose()
    assert shape(url)[2:] == (11, 24)  # no cascade any more

    command.downgrade(config, "0007")

    indexes, referred, records, subjects = shape(url)
    assert indexes >= DROPPED | KEPT
    assert referred == ["audit_records"]
    assert (records, subjects) == (11, 22)
