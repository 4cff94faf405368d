"""Facts from routed signals into the coverage store: counted once, nothing identifying kept.
Runs on the memory double, SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import select

from services.core.coverage.facts import Fact, fact_of
from services.core.pipeline import process
from services.coverage.ingest import ingest
from services.coverage.store import SqlCoverageStore
from services.database.tables.coverage import coverage_facts
from tests.router.helpers import NOW


def _expected(signals, loaded) -> Counter:
    """Count by hand: accepted signals of a counted kind that some covenant rule covers."""
    kinds = {"residents": "reports", "rural": "reports", "chemicals": "reports"}
    kinds |= dict.fromkeys(("energy", "water", "waste", "housing"), "indicators")
    expected: Counter = Counter()
    for signal in signals:
        outcome = process(
            orjson.dumps(signal), loaded.registry, loaded.policy, NOW, at_signal_time=True
        )
        if outcome.signal is None or all(d.rule is None for d in outcome.decisions):
            continue
        kind = str(signal["type"]).split(".")[0]
        if kind not in kinds:
            continue
        month = datetime.fromisoformat(str(signal["time"])).astimezone(UTC).strftime("%Y-%m")
        expected[(signal["data"]["municipality"], month, kinds[kind])] += 1
    return expected


def test_ingest_counts_each_covered_signal_once(coverage_store, loaded, signals, raw):
    summary = ingest(raw, loaded.registry, loaded.policy, coverage_store, NOW)
    assert summary.read == len(raw)
    assert 0 < summary.counted < summary.read  # stacked alerts / rejected input not counted
    assert summary.new == summary.counted
    months = coverage_store.months()
    assert months == ["2026-09", "2026-10", "2026-11"] or months[:2] == ["2026-09", "2026-10"]
    assert coverage_store.counts(months) == _expected(signals, loaded)

    again = ingest(raw, loaded.registry, loaded.policy, coverage_store, NOW)
    assert again.new == 0
    assert coverage_store.counts(months) == _expected(signals, loaded)


def test_counts_are_restricted_to_the_months_asked(coverage_store):
    facts = [
        Fact("p", f"s{i}", "2026-0" + str(1 + i % 3), "GM0361", "energy.x.v1", "indicators")
        for i in range(9)
    ]
    assert coverage_store.add(facts) == 9
    assert coverage_store.add(facts[:4]) == 0
    assert coverage_store.counts(["2026-02"]) == Counter({("GM0361", "2026-02", "indicators"): 3})
    assert coverage_store.months() == ["2026-01", "2026-02", "2026-03"]


def test_a_rejected_or_uncovered_signal_gives_no_fact(loaded, signals):
    tampered = dict(signals[0])
    tampered["type"] = "energy.unknown.v1"
    outcome = process(orjson.dumps(tampered), loaded.registry, loaded.policy, NOW)
    assert outcome.rejection is not None and fact_of(outcome) is None
    outsider = dict(signals[0], source="not-a-partner")
    outcome = process(orjson.dumps(outsider), loaded.registry, loaded.policy, NOW)
    assert fact_of(outcome) is None


def test_the_table_holds_no_identifier(tmp_path, loaded, signals, raw):
    from services.database.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    store = SqlCoverageStore(engine)
    store.create_schema()
    ingest(raw, loaded.registry, loaded.policy, store, NOW)
    with engine.connect() as connection:
        stored = " ".join(str(v) for row in connection.execute(select(coverage_facts)) for v in row)
    engine.dispose()
    identifiers = set()
    for signal in signals:
        for field in ("address", "ean", "bag", "buyer_kvk", "buyer_name", "vehicle_plate"):
            value = signal["data"].get(field)
            if isinstance(value, str) and len(value) > 5:
                identifiers.add(value)
    assert identifiers
    assert not [v for v in identifiers if v in stored]


def test_a_writer_waits_for_another_writer_on_sqlite(tmp_path):
    """The router and stacking worker write the same SQLite file: adding facts must wait for
    their transaction instead of failing with "database is locked"."""
    import sqlite3
    import threading
    import time

    from services.database.engine import make_engine

    path = tmp_path / "a.db"
    engine = make_engine(f"sqlite:///{path}")
    store = SqlCoverageStore(engine)
    store.create_schema()
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO coverage_facts VALUES ('x', 'y', '2026-10', 'GM0361', 't', 'reports')"
    )
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    fact = Fact("p", "s1", "2026-10", "GM0361", "energy.x.v1", "indicators")
    assert store.add([fact]) == 1
    assert time.monotonic() - started >= 0.4
    release.join()
    other.close()
    engine.dispose()


def test_a_database_other_than_sqlite_or_postgresql_is_refused_with_the_fix(tmp_path):
    from services.core.coverage.errors import CoverageError
    from services.coverage.store import SqlCoverageStore
    from services.database.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    engine.dialect.name = "oracle"  # as an engine on another database would report itself
    store = SqlCoverageStore(engine)
    with pytest.raises(CoverageError, match="SCHAKEL_DATABASE_URL"):
        store.add([Fact("p", "s1", "2026-10", "GM0361", "energy.x.v1", "indicators")])
