"""Retention: cases and items are purged when the covenant's retention of their contents has
passed — not before — each purge audited, nothing left to read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from services.audit.errors import AuditStoreError
from services.core.pseudonyms import Pseudonymiser
from services.database.tables.riec import riec_case_entries, riec_item_events, riec_items
from services.riec import retention
from services.riec.locate import locator
from services.riec.model import NotFoundError, QueueFilters, RiecError
from services.riec.retention import Purged, purge
from tests.riec.helpers import RIEC, Site, user


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


class FailingAudit:
    """The site's audit store, but writing a purge record fails (a full disk, a lost
    connection) — ``fail`` times, then it works again."""

    def __init__(self, inner: Any, fail: int = 1_000) -> None:
        self.inner = inner
        self.fail = fail

    def record(self, audit: Any, outbox: Any) -> int:
        if self.fail and any(r["action"].startswith("riec-purge") for r in audit):
            self.fail -= 1
            raise AuditStoreError("recording audit records failed: disk full")
        return int(self.inner.record(audit, outbox))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def items_left(site: Site) -> int:
    with site.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(riec_items)).scalar_one())


def test_a_purge_whose_audit_record_fails_deletes_nothing(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    short = next(i for i in everything if i.message["retention_days"] == 180)
    case = site.cases.open(ana, short.id, "kept 180 days")
    now = short.keep_until + timedelta(days=1)
    before, records = items_left(site), len(site.workplace.audit.records(limit=100_000))
    real = site.workplace.audit
    site.workplace.audit = FailingAudit(real)  # type: ignore[assignment]
    with pytest.raises(RiecError, match=r"purge stopped.*nothing of it was deleted"):
        purge(site.workplace, now)
    assert items_left(site) == before
    assert site.cases.get(ana, case.id).title == "kept 180 days"
    assert len(real.records(limit=100_000)) == records
    site.workplace.audit = FailingAudit(real, fail=1)  # type: ignore[assignment]
    with pytest.raises(RiecError):
        purge(site.workplace, now)  # the case's record fails: still nothing deleted
    assert site.cases.get(ana, case.id) is not None
    site.workplace.audit = real
    done = purge(site.workplace, now)
    assert done.cases == 1 and items_left(site) == before - done.items
    purged = [r for _, r in real.records(limit=100_000) if r["action"].startswith("riec-purge")]
    assert sum(r["riec"]["items"] for r in purged if r["action"] == "riec-purge-items") == (
        done.items - 1
    )


def test_a_rerun_after_a_failed_delete_writes_no_second_record(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    now = min(i.keep_until for i in everything) + timedelta(seconds=1)
    due = [i for i in everything if i.keep_until < now]
    assert due

    class DeleteFailedError(Exception):
        pass

    original = retention._delete_items

    def broken(connection: Any, ids: list[str]) -> None:
        original(connection, ids)
        raise DeleteFailedError  # the transaction rolls back after the record was written

    retention._delete_items = broken  # type: ignore[assignment]
    try:
        with pytest.raises(DeleteFailedError):
            purge(site.workplace, now)
    finally:
        retention._delete_items = original
    assert items_left(site) == len(everything)
    first = [r for _, r in site.workplace.audit.records(limit=100_000) if "purge" in r["action"]]
    assert len(first) == 1
    purge(site.workplace, now)
    again = [r for _, r in site.workplace.audit.records(limit=100_000) if "purge" in r["action"]]
    assert again == first
    assert items_left(site) == len(everything) - len(due)


def test_two_purges_in_one_second_are_two_records(site: Site):
    ana = user(site, "ana")
    everything = sorted(
        site.workplace.queue(ana, QueueFilters(), limit=10_000), key=lambda i: i.keep_until
    )
    first, second = (
        everything[0],
        next(i for i in everything if i.keep_until > everything[0].keep_until),
    )
    before = items_left(site)
    now = second.keep_until + timedelta(microseconds=1)  # both due at `now` ...
    with site.engine.begin() as connection:  # ... but the second arrives a moment later
        connection.execute(
            riec_items.update().where(riec_items.c.id == second.id).values(keep_until=now)
        )
    purge(site.workplace, now)
    with site.engine.begin() as connection:
        connection.execute(
            riec_items.update()
            .where(riec_items.c.id == second.id)
            .values(keep_until=first.keep_until)
        )
    purge(site.workplace, now)  # the same second, other items
    records = [
        r for _, r in site.workplace.audit.records(limit=100_000)
        if r["action"] == "riec-purge-items"
    ]  # fmt: skip
    assert len({r["record_id"] for r in records}) == len(records) >= 2
    assert sum(r["riec"]["items"] for r in records) == before - items_left(site)  # none dropped
    assert records[-1]["riec"]["items"] == 1 and records[-1]["covenant"]["id"] == (
        second.covenant_id
    )
    with pytest.raises(NotFoundError):
        site.workplace.item(ana, second.id)


def test_a_feed_redelivered_after_the_purge_brings_nothing_back(site: Site):
    # maintenance re-delivers feed messages: what was purged must not be stored again, nor be
    # purged again under the record id of the first purge (the audit store would skip it)
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    now = min(i.keep_until for i in everything) + timedelta(seconds=1)
    due = [i for i in everything if i.keep_until < now and i.case_id is None]
    assert due
    site.workplace.clock = lambda: now
    first = purge(site.workplace, now)
    again = site.workplace.receive(RIEC, site.feed.messages, locator(Pseudonymiser(site.keys)))
    assert again == 0
    second = purge(site.workplace, now)
    records = [
        r for _, r in site.workplace.audit.records(limit=100_000)
        if r["action"] == "riec-purge-items"
    ]  # fmt: skip
    assert sum(r["riec"]["items"] for r in records) == first.items + second.items == len(due)


class JoinsDuringPurge:
    """The site's audit store; while the purge's record of ``case_id`` is being written (between
    the purge reading the case and deleting it), another transaction adds ``item_id`` to it."""

    def __init__(self, inner: Any, engine: Any, case_id: str, item_id: str) -> None:
        self.inner, self.engine, self.case_id, self.item_id = inner, engine, case_id, item_id
        self.joined = False

    def record(self, audit: Any, outbox: Any) -> int:
        if not self.joined and any(r["action"] == "riec-purge" for r in audit):
            self.joined = True
            with self.engine.begin() as connection:
                connection.execute(
                    riec_items.update()
                    .where(riec_items.c.id == self.item_id)
                    .values(case_id=self.case_id, state="case")
                )
        return int(self.inner.record(audit, outbox))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_an_item_joining_a_case_while_it_is_purged_goes_with_it_not_left_pointing_at_nothing(
    site: Site,
):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    short = next(i for i in everything if i.message["retention_days"] == 180)
    late = next(i for i in everything if i.message["retention_days"] >= 365)
    case = site.cases.open(ana, short.id, "kept 180 days")
    now = short.keep_until + timedelta(days=1)
    real = site.workplace.audit
    site.workplace.audit = JoinsDuringPurge(real, site.engine, case.id, late.id)  # type: ignore[assignment]

    purge(site.workplace, now)

    with site.engine.connect() as connection:
        dangling = connection.execute(
            select(riec_items.c.id).where(riec_items.c.case_id == case.id)
        ).all()
    assert dangling == []  # nothing points at the purged case
    with pytest.raises(NotFoundError):
        site.cases.get(ana, case.id)
    records = [r for _, r in real.records(limit=100_000) if r["action"] == "riec-purge"]
    assert records[-1]["riec"]["items"] == 2  # the record of the delete names both


def test_a_step_on_a_purged_case_is_refused_not_left_dangling(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    short = next(i for i in everything if i.message["retention_days"] == 180)
    late = next(i for i in everything if i.message["retention_days"] >= 365)
    case = site.cases.open(ana, short.id, "kept 180 days")
    stale = site.cases.get(ana, case.id)
    purge(site.workplace, short.keep_until + timedelta(days=1))
    from services.riec.cases import still_open

    with site.engine.begin() as connection, pytest.raises(RiecError, match="changed meanwhile"):
        still_open(connection, stale.id)
    with pytest.raises(NotFoundError):
        site.cases.add(ana, case.id, late.id)
    assert site.workplace.item(ana, late.id).case_id is None
