"""Every query the product runs on the audit log is served by an index (SQLite's query plans).

Each case runs the product's own function (workplace search, record, subject look-up,
covenant report, coverage volumes, re-identification check, the store's reads and the purge
plan) while the SQL it sends is captured, then asks SQLite for the plan of exactly that SQL
with exactly those parameters. Without ``ANALYZE`` statistics (the product never runs it)
SQLite plans from the schema alone, so a plan on this small database is the plan on a large
one. A plain ``SCAN audit_records`` (every row) is allowed only where the query reads in
``seq`` order and stops after a page, and says so. See docs/performance.md (audit store) for
the plans before and after revision 0008.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event

from services.audit.queries import (
    Filters,
    Period,
    Scope,
    covenants,
    recipient_view,
    record,
    search,
    subject_lookup,
)
from services.audit.report import covenant_report
from services.audit.store import SqlAuditStore
from services.coverage.volumes import signal_volumes
from services.database.engine import make_engine
from services.reid.issued import find_issue
from services.reid.model import ReidError
from tests.audit.test_store import T0, decision_record, rejected_record

END = T0 + timedelta(days=1)
PERIOD = Period(T0, END)
EVERYTHING = Scope.everything()
SCOPED = Scope(covenants=frozenset({"nh-drugs-2025"}), partners=frozenset({"politie-nh"}))
SEQ_ORDER = "seq order, one page"
"""An allowed full scan: the rows are read newest (or oldest) first and the read stops once a
page is full, so it costs a page, not the table, unless the value is rare."""


def _reid(engine: Engine) -> None:
    with pytest.raises(ReidError):
        find_issue(engine, "politie-nh", "nh-drugs-2025", "P-unknown")


Case = tuple[str, Callable[[Engine, SqlAuditStore], object], set[str], str | None]

CASES: list[Case] = [
    # (name, query, indexes its plan must use, why a full scan is fine or None)
    ("search, no filter", lambda e, _: search(e, Filters(), EVERYTHING), set(), SEQ_ORDER),
    (
        "search, period",
        lambda e, _: search(e, Filters(period=PERIOD), EVERYTHING),
        {"ix_audit_records_timestamp"},
        None,
    ),
    (
        "search, source",
        lambda e, _: search(e, Filters(origin="liander"), EVERYTHING),
        {"ix_audit_records_origin"},
        None,
    ),
    (
        "search, source and period",
        lambda e, _: search(e, Filters(period=PERIOD, origin="liander"), EVERYTHING),
        {"ix_audit_records_origin"},
        None,
    ),
    (
        "search, recipient",
        lambda e, _: search(e, Filters(recipient="riec-nh"), EVERYTHING),
        {"ix_audit_records_recipient"},
        None,
    ),
    (
        "recipient view (NEN 7513)",
        lambda e, _: recipient_view(e, "riec-nh", PERIOD, EVERYTHING),
        {"ix_audit_records_recipient"},
        None,
    ),
    (
        "search, covenant and rule",
        lambda e, _: search(e, Filters(covenant="nh-drugs-2025", rule="r"), EVERYTHING),
        {"ix_audit_records_covenant"},
        None,
    ),
    (
        "search, signal type",
        lambda e, _: search(e, Filters(signal_type="energy.consumption_anomaly.v1"), EVERYTHING),
        {"ix_audit_records_object"},
        None,
    ),
    (
        "search, result",
        lambda e, _: search(e, Filters(result="withheld"), EVERYTHING),
        set(),
        SEQ_ORDER + " (three values: each is a large share of the log)",
    ),
    (
        "search, result and period",
        lambda e, _: search(e, Filters(period=PERIOD, result="rejected"), EVERYTHING),
        {"ix_audit_records_timestamp"},
        None,
    ),
    (
        "search, rule alone",
        lambda e, _: search(e, Filters(rule="energy-to-police"), EVERYTHING),
        set(),
        SEQ_ORDER + " (rule ids belong to a covenant; no index leads with them)",
    ),
    (
        "search, scoped officer",
        lambda e, _: search(e, Filters(), SCOPED),
        {"ix_audit_records_covenant"},
        None,
    ),
    ("record by id", lambda e, _: record(e, "x", EVERYTHING), {"uq_audit_records_record_id"}, None),
    ("record by seq", lambda e, _: record(e, 3, EVERYTHING), {"PRIMARY KEY"}, None),
    (
        "subject look-up",
        lambda e, _: subject_lookup(e, ["S-ean-1", "S-adr-1"], SCOPED),
        {"PRIMARY KEY"},
        None,
    ),
    (
        "covenant report",
        lambda e, _: covenant_report(e, "nh-drugs-2025", PERIOD, SCOPED),
        {"ix_audit_records_covenant"},
        None,
    ),
    ("covenant list", lambda e, _: covenants(e, EVERYTHING), {"ix_audit_records_covenant"}, None),
    (
        "coverage volumes",
        lambda e, _: signal_volumes(e, END),
        {"ix_audit_records_timestamp"},
        None,
    ),
    ("re-identification check", lambda e, _: _reid(e), {"ix_audit_records_covenant"}, None),
    (
        "store: records for subject",
        lambda _, s: s.records_for_subject("S-ean-1"),
        {"PRIMARY KEY"},
        None,
    ),
    ("store: record by id", lambda _, s: s.get("x"), {"uq_audit_records_record_id"}, None),
    ("store: chain page", lambda _, s: s.chain(after_seq=2), {"PRIMARY KEY"}, None),
    (
        "store: purge plan",
        lambda _, s: s.plan_purge(END),
        set(),
        "seq order from the oldest: stops at the first record young enough to keep",
    ),
]


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, SqlAuditStore]]:
    path: Path = tmp_path_factory.mktemp("plans") / "audit.db"
    filled = SqlAuditStore.open(f"sqlite:///{path}")
    records = [decision_record(n, delivered=n % 3 > 0, recipient="riec-nh") for n in range(30)]
    filled.record([*records, rejected_record(1)], [])
    filled.close()
    engine = make_engine(f"sqlite:///{path}")
    store = SqlAuditStore(engine)  # on the same engine, so its statements are captured too
    yield engine, store
    store.close()
    engine.dispose()


def plans(engine: Engine, run: Callable[[], object]) -> list[list[str]]:
    """The SQLite plan of every audit-table statement ``run`` sends."""
    sent: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        statement, parameters = args[2], args[3]
        if "audit_records" in statement or "audit_subjects" in statement:
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    found: list[list[str]] = []
    with engine.connect() as connection:
        for statement, parameters in sent:
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
            found.append([str(row[3]) for row in rows])
    return found


def index_names(line: str) -> str:
    """``line`` with SQLite's automatic name of the ``record_id`` unique index spelled as the
    schema names it."""
    return line.replace("sqlite_autoindex_audit_records_1", "uq_audit_records_record_id")


@pytest.mark.parametrize(("name", "query", "indexes", "scan_ok"), CASES, ids=[c[0] for c in CASES])
def test_every_product_query_is_indexed(
    database: tuple[Engine, SqlAuditStore],
    name: str,
    query: Callable[[Engine, SqlAuditStore], object],
    indexes: set[str],
    scan_ok: str | None,
) -> None:
    engine, store = database
    statements = plans(engine, lambda: query(engine, store))
    assert statements, f"{name} sent no query on the audit tables"
    lines = [index_names(line) for plan in statements for line in plan]
    full_scans = [line for line in lines if line in ("SCAN audit_records", "SCAN audit_subjects")]
    if scan_ok is None:
        assert full_scans == [], f"{name}: {lines}"
    for index in indexes:
        assert any(index in line for line in lines), f"{name} does not use {index}: {lines}"


def test_the_plans_see_the_migrated_schema(database: tuple[Engine, SqlAuditStore]) -> None:
    """The dropped indexes are really gone, so no plan above could have used them."""
    engine, _ = database
    with engine.connect() as connection:
        names = {
            str(row[0])
            for row in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'index'"
            )
        }
    assert "ix_audit_records_result" not in names
    assert "ix_audit_records_signal_id" not in names
    assert {"ix_audit_records_timestamp", "ix_audit_subjects_seq"} <= names


def test_a_period_is_read_from_the_index_for_one_day_of_many(
    database: tuple[Engine, SqlAuditStore],
) -> None:
    """The period bounds are index bounds (``timestamp>? AND timestamp<?``), not a filter."""
    engine, _ = database
    day = Period(T0, T0 + timedelta(days=1))
    lines = [
        line
        for plan in plans(engine, lambda: search(engine, Filters(period=day), EVERYTHING))
        for line in plan
    ]
    assert any("timestamp>?" in line and "timestamp<?" in line for line in lines), lines
    assert datetime.now(UTC) > T0  # the fixture's records are in the past, like real ones
