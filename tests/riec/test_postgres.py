"""The workplace on PostgreSQL: the same queue, steps, case and purge as on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.audit.store import SqlAuditStore
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.riec.cases import CaseFiles
from services.riec.locate import locator
from services.riec.model import ItemState, QueueFilters
from services.riec.retention import purge
from services.riec.workplace import Workplace
from services.web.users import UserStore
from tests.riec.helpers import KDF_COST, PASSWORD, USERS, build, user

pytestmark = pytest.mark.postgres


def test_the_workplace_agrees_between_sqlite_and_postgresql(tmp_path: Path, postgres_url: str):
    site = build(tmp_path / "riec.db")
    SqlAuditStore.open(postgres_url).close()  # migrated: 0012 makes the workplace tables
    engine = make_engine(postgres_url)
    try:
        users = UserStore(engine, kdf_cost=KDF_COST)
        for name, (role, covenants, partners) in USERS.items():
            users.add(name, PASSWORD, role, covenants=covenants, partners=partners)
        here = Workplace(
            engine, SqlAuditStore(engine), site.workplace.registry, site.workplace.regions,
            clock=site.workplace.clock,
        )  # fmt: skip
        locate = locator(Pseudonymiser(site.keys))
        assert here.receive("riec-nh", site.feed.messages, locate) == len(site.feed.messages)
        assert here.receive("riec-nh", site.feed.messages, locate) == 0
        ana = user(site, "ana")
        for filters in (
            QueueFilters(),
            QueueFilters(signal_type="hub.stacked_location_alert.v1"),
            QueueFilters(min_score=0.9, max_age_days=60),
            QueueFilters(step="cannabis.acquire_location"),
        ):
            left = site.workplace.queue(ana, filters, limit=10_000)
            right = here.queue(ana, filters, limit=10_000)
            assert [i.id for i in left] == [i.id for i in right]
            assert [i.message for i in left] == [i.message for i in right]
        first = here.queue(ana, QueueFilters(), limit=1)[0]
        assert here.take(ana, first.id).state is ItemState.ASSESSING
        cases = CaseFiles(here)
        case = cases.open(ana, first.id, "on PostgreSQL")
        cases.note(ana, case.id, "a note")
        assert [e.step for e in cases.entries(case.id)] == ["open-case", "note"]
        assert here.queue(user(site, "other-riec"), QueueFilters()) == []
        done = purge(here, first.keep_until + (first.keep_until - first.received_at))
        assert done.cases == 1 and done.items >= 1
    finally:
        engine.dispose()
        site.engine.dispose()
