"""Retention: cases and items are purged when the covenant's retention of their contents has
passed — not before — each purge audited, nothing left to read back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from services.database.tables.riec import riec_case_entries, riec_item_events, riec_items
from services.riec.model import NotFoundError, QueueFilters
from services.riec.retention import Purged, purge
from tests.riec.helpers import Site, user


def test_due_cases_and_items_go_the_rest_stays(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    short = next(i for i in everything if i.message["retention_days"] == 180)
    long = next(i for i in everything if i.message["retention_days"] >= 365)
    soon = site.cases.open(ana, short.id, "kept 180 days")
    site.cases.note(ana, soon.id, "a note that must go with the case")
    later = site.cases.open(ana, long.id, "kept longer")
    now = short.keep_until + timedelta(days=1)
    assert now < long.keep_until
    due_loose = {i.id for i in everything if i.keep_until < now and i.id != short.id}
    assert due_loose and any(i.keep_until >= now for i in everything if i.id != long.id)

    purged = purge(site.workplace, now)

    assert (purged.cases, purged.items) == (1, len(due_loose) + 1)
    with pytest.raises(NotFoundError):
        site.cases.get(ana, soon.id)
    with pytest.raises(NotFoundError):
        site.workplace.item(ana, short.id)
    assert site.cases.entries(soon.id) == [] and site.workplace.history(short.id) == []
    assert site.cases.get(ana, later.id).title == "kept longer"
    left = {i.id for i in site.workplace.queue(ana, QueueFilters(), limit=10_000)}
    assert left == {i.id for i in everything} - due_loose - {short.id}
    with site.engine.connect() as connection:
        for table, column in (
            (riec_items, riec_items.c.id),
            (riec_item_events, riec_item_events.c.item_id),
        ):
            assert not connection.execute(
                select(func.count()).select_from(table).where(column.in_(due_loose | {short.id}))
            ).scalar_one()
        assert not connection.execute(
            select(func.count()).where(riec_case_entries.c.case_id == soon.id)
        ).scalar_one()
    records = [r for _, r in site.workplace.audit.records(limit=100_000)]
    case_record = next(r for r in records if r["action"] == "riec-purge")
    assert case_record["riec"]["case"] == soon.id and case_record["riec"]["entries"] == 2
    assert case_record["actor"] == "retention"
    loose = [r for r in records if r["action"] == "riec-purge-items"]
    assert sum(r["riec"]["items"] for r in loose) == len(due_loose)

    again = purge(site.workplace, now)
    assert (again.cases, again.items) == (0, 0)
    assert len(site.workplace.audit.records(limit=100_000)) == len(records)


def test_nothing_is_purged_before_its_time(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    first_due = min(i.keep_until for i in everything)
    assert purge(site.workplace, first_due) == Purged(0, 0)
    assert len(site.workplace.queue(ana, QueueFilters(), limit=10_000)) == len(everything)
