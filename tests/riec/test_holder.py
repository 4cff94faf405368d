"""The holder of an item is enforced: another analyst cannot dismiss it, bundle it or open a
case with it — only take it over, explicitly, with a reason, audited. And opening a case is
atomic: an item that cannot join leaves no empty case behind."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from services.database.tables.riec import riec_case_entries, riec_cases
from services.riec.model import HeldError, ItemState, QueueFilters, RiecError
from tests.riec.helpers import Site, user


def held_by_ana(site: Site) -> str:
    item = site.workplace.queue(user(site, "ana"), QueueFilters(), limit=1)[0]
    site.workplace.take(user(site, "ana"), item.id)
    return item.id


def test_another_analyst_cannot_act_on_a_held_item(site: Site):
    item_id = held_by_ana(site)
    bo = user(site, "bo")
    with pytest.raises(HeldError, match=r"held by ana.*take it over"):
        site.workplace.dismiss(bo, item_id, "not interesting")
    with pytest.raises(HeldError, match="held by ana"):
        site.cases.open(bo, item_id, "bo's case")
    case = site.cases.open(user(site, "ana"), held_by_other(site, "ana"), "ana's case")
    other = site.workplace.queue(user(site, "ana"), QueueFilters(state=ItemState.NEW), limit=1)[0]
    site.workplace.take(user(site, "ana"), other.id)
    with pytest.raises(HeldError):
        site.cases.add(bo, case.id, other.id)
    with pytest.raises(HeldError):
        site.cases.add(user(site, "admin"), case.id, other.id)  # an admin takes over too
    after = site.workplace.item(bo, item_id)
    assert (after.state, after.holder) == (ItemState.ASSESSING, "ana")
    assert [e.step for e in site.workplace.history(item_id)] == ["take"]


def held_by_other(site: Site, name: str) -> str:
    item = site.workplace.queue(user(site, name), QueueFilters(state=ItemState.NEW), limit=1)[0]
    site.workplace.take(user(site, name), item.id)
    return item.id


def test_a_take_over_is_explicit_needs_a_reason_and_is_audited(site: Site):
    item_id = held_by_ana(site)
    bo = user(site, "bo")
    with pytest.raises(RiecError, match="reason"):
        site.workplace.take_over(bo, item_id, " ")
    with pytest.raises(RiecError, match="held by you already"):
        site.workplace.take_over(user(site, "ana"), item_id, "mine")
    taken = site.workplace.take_over(bo, item_id, "ana is on leave")
    assert (taken.state, taken.holder) == (ItemState.ASSESSING, "bo")
    last = site.workplace.history(item_id)[-1]
    assert (last.actor, last.step) == ("bo", "takeover")
    record = site.workplace.audit.get(last.record_id)
    assert record is not None
    assert (record["action"], record["result"]) == ("riec-takeover", "taken-over")
    assert record["riec"] == {"item": item_id, "from": "ana"}
    assert "leave" not in str(record)
    dismissed = site.workplace.dismiss(bo, item_id, "checked, nothing")
    assert dismissed.state is ItemState.DISMISSED
    with pytest.raises(HeldError):
        site.workplace.dismiss(user(site, "ana"), held_by_other(site, "bo"), "x")


def test_a_new_item_is_not_taken_over(site: Site):
    item = site.workplace.queue(user(site, "ana"), QueueFilters(), limit=1)[0]
    with pytest.raises(RiecError, match="needs it assessing"):
        site.workplace.take_over(user(site, "bo"), item.id, "why not")


def counts(site: Site) -> tuple[int, int]:
    with site.engine.connect() as connection:
        cases = connection.execute(select(func.count()).select_from(riec_cases)).scalar_one()
        entries = connection.execute(
            select(func.count()).select_from(riec_case_entries)
        ).scalar_one()
    return cases, entries


def test_a_refused_item_leaves_no_empty_case(site: Site):
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(), limit=1)[0]
    site.workplace.dismiss(ana, item.id, "nothing in it")  # dismissed: cannot join a case
    before = counts(site)
    audited = len(site.workplace.audit.records(limit=100_000))
    with pytest.raises(RiecError, match="dismissed"):
        site.cases.open(ana, item.id, "a case from a dismissed item")
    assert counts(site) == before
    assert site.cases.listing(ana) == []
    assert len(site.workplace.audit.records(limit=100_000)) == audited
    held = held_by_other(site, "bo")
    with pytest.raises(HeldError):
        site.cases.open(ana, held, "a case from bo's item")
    assert counts(site) == before


def test_an_opened_case_has_its_entry_and_both_records(site: Site):
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(), limit=1)[0]
    case = site.cases.open(ana, item.id, "barn")
    assert [e.step for e in site.cases.entries(case.id)] == ["open-case"]
    assert site.workplace.item(ana, item.id).case_id == case.id
    actions = [r["action"] for _, r in site.workplace.audit.records(limit=100_000)][-2:]
    assert actions == ["riec-open-case", "riec-to-case"]


@pytest.mark.parametrize("typed", ["ok\x1b[2Jforged", "a\x00b", "one\ntwo", "x\u202ey", "\x7f"])
def test_reasons_with_control_or_escape_characters_are_refused_by_name(site: Site, typed: str):
    item_id = held_by_ana(site)
    bo = user(site, "bo")
    with pytest.raises(RiecError, match=r"reason holds a control character \(U\+"):
        site.workplace.take_over(bo, item_id, typed)
    with pytest.raises(RiecError, match=r"reason holds a control character \(U\+"):
        site.workplace.dismiss(user(site, "ana"), item_id, typed)
    assert [e.step for e in site.workplace.history(item_id)] == ["take"]


def test_a_note_keeps_its_line_breaks_but_not_escapes(site: Site):
    item_id = held_by_ana(site)
    case = site.cases.open(user(site, "ana"), item_id, "barn")
    site.cases.note(user(site, "ana"), case.id, "first line\r\n\tsecond line")
    with pytest.raises(RiecError, match=r"note holds a control character \(U\+001B\)"):
        site.cases.note(user(site, "ana"), case.id, "a\x1b[31mred")
    fresh = site.workplace.queue(user(site, "ana"), QueueFilters(state=ItemState.NEW), limit=1)
    with pytest.raises(RiecError, match=r"case title holds a control character"):
        site.cases.open(user(site, "ana"), fresh[0].id, "a\tb")
