"""The evidence store, in memory and on SQLite and PostgreSQL: the same behaviour, durable
across a restart (a new store on the same database resumes the stacker exactly)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from services.database.engine import make_engine
from services.demo.generator import generate
from services.stacking.model import StackingStore
from services.stacking.store import SqlStackingStore
from services.stacking.testing import MemoryStackingDatabase, MemoryStackingStore
from tests.stacking.helpers import NOW, make_hub, records

Opener = Callable[[], StackingStore]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    if request.param == "memory":
        db = MemoryStackingDatabase()
        yield lambda: MemoryStackingStore(db)
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        url = request.getfixturevalue("postgres_url")

    def open_sql() -> StackingStore:
        store = SqlStackingStore(make_engine(url))
        store.create_schema()
        return store

    yield open_sql


TRAFFIC = generate(1500, seed=11, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)


def test_a_restarted_stacker_resumes_from_the_store(opener: Opener) -> None:
    hub = make_hub()
    half = len(TRAFFIC.signals) // 2
    first, second = TRAFFIC.signals[:half], TRAFFIC.signals[half:]

    straight = hub.step()
    expected = {**straight.run(records(first), NOW).changes.alerts}
    expected |= straight.run(records(second), NOW).changes.alerts

    store = opener()
    step = hub.step(store.load())
    store.write(step.run(records(first), NOW).changes)
    store.close()  # the worker stops (or crashes after its store commit)

    store = opener()
    step = hub.step(store.load())
    replayed = step.run(records(first[-300:]), NOW)  # uncommitted offsets: read again
    assert not replayed.changes.alerts and not replayed.changes.evidence
    store.write(step.run(records(second), NOW).changes)
    alerts = {a.alert_id: a for a in store.alerts()}
    assert expected, "the traffic holds planted sites"
    assert {k: (a.signal_id, a.revision) for k, a in alerts.items()} == {
        k: (a.signal_id, a.revision) for k, a in expected.items()
    }
    assert {a.alert_id for a in store.unpublished()} == set(alerts)
    store.mark_published(list(alerts.values())[:2])
    assert len(store.unpublished()) == len(alerts) - 2
    store.close()


def test_alert_listing_filters_and_orders(opener: Opener) -> None:
    hub = make_hub()
    store = opener()
    store.write(hub.step().run(records(TRAFFIC.signals), NOW).changes)
    alerts = store.alerts()
    assert alerts and [a.score for a in alerts] == sorted((a.score for a in alerts), reverse=True)
    place = alerts[0].municipality
    assert {a.municipality for a in store.alerts(municipality=place)} == {place}
    assert store.alerts(min_score=1.01) == []
    assert len(store.alerts(limit=1)) == 1
    store.close()


def test_no_raw_identifier_reaches_the_sql_tables(tmp_path: Path) -> None:
    hub = make_hub()
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = SqlStackingStore(make_engine(url))
    store.create_schema()
    store.write(hub.step().run(records(TRAFFIC.signals), NOW).changes)
    store.close()
    engine = make_engine(url)
    with engine.connect() as conn:
        dump = "\n".join(
            str(tuple(row))
            for table in (
                "stacking_locations",
                "stacking_evidence",
                "stacking_aliases",
                "stacking_alerts",
            )
            for row in conn.execute(text(f"SELECT * FROM {table}"))  # noqa: S608 - fixed names
        )
    engine.dispose()
    assert "GM0" in dump  # the tables are filled
    for site in TRAFFIC.planted:
        for raw in (site.address, site.bag, site.ean, site.address.replace(" ", "")):
            assert raw not in dump
