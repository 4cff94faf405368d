"""Triage: the queue holds exactly what the feed delivered, in the analyst's reach only; each
step moves the state once, keeps the history and writes an audit record without identifiers."""

from __future__ import annotations

import orjson
import pytest

from services.audit.queries import Filters, search
from services.riec.items import item_row
from services.riec.model import ItemState, NotFoundError, QueueFilters, RiecError
from tests.core.builders import REGISTRY
from tests.riec.helpers import RIEC, Site, user


def test_the_queue_holds_what_the_feed_delivered_and_nothing_more(site: Site):
    ana = user(site, "ana")
    shown = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    assert {i.id for i in shown} == {m["exchange_id"] for m in site.feed.messages}
    delivered = {m["exchange_id"]: m for m in site.feed.messages}
    for item in shown:
        assert item.message == delivered[item.id]
        assert item.state is ItemState.NEW and item.holder is None
    assert any(i.alert for i in shown) and any(not i.alert for i in shown)
    stored = orjson.dumps([i.message for i in shown]).decode()
    for address in site.feed.planted:
        assert address not in stored


def test_a_replayed_feed_adds_nothing(site: Site):
    from services.core.pseudonyms import Pseudonymiser
    from services.riec.locate import locator

    again = site.workplace.receive(RIEC, site.feed.messages, locator(Pseudonymiser(site.keys)))
    assert again == 0


def test_another_riecs_analyst_sees_nothing_and_cannot_act(site: Site):
    stranger = user(site, "other-riec")
    assert site.workplace.queue(stranger, QueueFilters()) == []
    item = site.workplace.queue(user(site, "ana"), QueueFilters(), limit=1)[0]
    with pytest.raises(NotFoundError):
        site.workplace.item(stranger, item.id)
    with pytest.raises(NotFoundError):
        site.workplace.take(stranger, item.id)
    with pytest.raises(NotFoundError):
        site.workplace.dismiss(stranger, item.id, "not ours")
    assert site.workplace.item(user(site, "ana"), item.id).state is ItemState.NEW


def test_an_analyst_sees_only_the_covenants_of_its_scope(site: Site):
    narrow = site.workplace.queue(user(site, "drugs-only"), QueueFilters(), limit=10_000)
    wide = site.workplace.queue(user(site, "ana"), QueueFilters(), limit=10_000)
    assert narrow and {i.covenant_id for i in narrow} == {"drugslocaties-nh"}
    hidden = next(i for i in wide if i.covenant_id != "drugslocaties-nh")
    with pytest.raises(NotFoundError):
        site.workplace.take(user(site, "drugs-only"), hidden.id)


def test_other_roles_reach_nothing(site: Site):
    for name in ("drugs-officer", "manager"):
        assert site.workplace.queue(user(site, name), QueueFilters()) == []


def test_the_region_is_the_riecs_and_items_outside_it_are_marked_not_hidden(site: Site):
    ana = user(site, "ana")
    codes = site.workplace.municipalities(ana)
    assert "GM0363" not in codes  # Amsterdam belongs to RIEC Amsterdam-Amstelland
    assert "GM0361" in codes  # Alkmaar to RIEC Noord-Holland
    where = site.workplace.reach(ana)
    shown = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    outside = [i for i in shown if not where.in_region(i.municipality)]
    assert outside  # e.g. precursor transactions in Amsterdam reach the RIEC by rule
    assert all(i.municipality not in codes for i in outside)


def test_take_assess_dismiss_reopen_with_history_and_audit(site: Site):
    ana, bo = user(site, "ana"), user(site, "bo")
    item = site.workplace.queue(ana, QueueFilters(), limit=1)[0]
    taken = site.workplace.take(ana, item.id)
    assert taken.state is ItemState.ASSESSING and taken.holder == "ana"
    with pytest.raises(RiecError, match="held by ana"):
        site.workplace.take(bo, item.id)
    with pytest.raises(RiecError, match="reason"):
        site.workplace.dismiss(ana, item.id, "   ")
    dismissed = site.workplace.dismiss(ana, item.id, "known tenant, legal grow licence checked")
    assert dismissed.state is ItemState.DISMISSED
    assert dismissed.reason == "known tenant, legal grow licence checked"
    reopened = site.workplace.reopen(bo, item.id, "second report from the same street")
    assert reopened.state is ItemState.ASSESSING and reopened.holder == "bo"
    history = site.workplace.history(item.id)
    assert [(e.actor, e.step) for e in history] == [
        ("ana", "take"), ("ana", "dismiss"), ("bo", "reopen"),
    ]  # fmt: skip
    for event in history:
        stored = site.workplace.audit.get(event.record_id)
        assert stored is not None and stored["action"] == f"riec-{event.step}"
        assert stored["actor"] == event.actor and stored["recipient"] == RIEC
        assert stored["riec"]["item"] == item.id


def test_the_privacy_officer_finds_the_actions_in_the_audit_log(site: Site):
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(), limit=1)[0]
    site.workplace.take(ana, item.id)
    site.workplace.dismiss(ana, item.id, "duplicate of an open case")
    officer = user(site, "drugs-officer")
    page = search(site.engine, Filters(result="dismissed"), officer.scope, limit=50)
    assert [e.record_id for e in page.entries] == [site.workplace.history(item.id)[-1].record_id]
    assert page.entries[0].body["reason"] == "reason given (25 characters)"


def test_a_typed_reason_never_enters_the_audit_chain(site: Site):
    """A reason is free text (it may name a person or an address); the audit record is kept
    beyond the workplace's retention, so it names only the reason's length."""
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(), limit=1)[0]
    site.workplace.take(ana, item.id)
    typed = "Jan Jansen, Kerkstraat 5 Alkmaar"
    site.workplace.dismiss(ana, item.id, typed)
    site.workplace.reopen(ana, item.id, typed)
    for event in site.workplace.history(item.id):
        stored = site.workplace.audit.get(event.record_id)
        assert stored is not None
        assert "Jansen" not in orjson.dumps(stored).decode()


def test_filters(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    by_type = site.workplace.queue(
        ana, QueueFilters(signal_type="hub.stacked_location_alert.v1"), limit=10_000
    )
    assert by_type and {i.id for i in by_type} == {i.id for i in everything if i.alert}
    town = next(i.municipality for i in everything if i.municipality)
    assert {
        i.id for i in site.workplace.queue(ana, QueueFilters(municipality=town), limit=10_000)
    } == {i.id for i in everything if i.municipality == town}
    scored = site.workplace.queue(ana, QueueFilters(min_score=0.9), limit=10_000)
    assert scored and {i.id for i in scored} == {
        i.id for i in everything if i.score is not None and i.score >= 0.9
    }
    step = next(s for i in everything for s in i.steps)
    stepped = site.workplace.queue(ana, QueueFilters(step=step), limit=10_000)
    assert {i.id for i in stepped} == {i.id for i in everything if step in i.steps}
    recent = site.workplace.queue(ana, QueueFilters(max_age_days=30), limit=10_000)
    now = site.workplace.now()
    assert {i.id for i in recent} == {i.id for i in everything if i.age_days(now) <= 30}
    site.workplace.take(ana, everything[0].id)
    held = site.workplace.queue(ana, QueueFilters(state=ItemState.ASSESSING))
    assert [i.id for i in held] == [everything[0].id]


def test_pages_of_the_queue_follow_each_other(site: Site):
    ana = user(site, "ana")
    everything = site.workplace.queue(ana, QueueFilters(), limit=10_000)
    first = site.workplace.queue(ana, QueueFilters(), limit=20)
    last = first[-1]
    second = site.workplace.queue(
        ana, QueueFilters(), limit=20, before=f"{last.received_at.isoformat()}|{last.id}"
    )
    assert [i.id for i in first + second] == [i.id for i in everything[:40]]


@pytest.mark.parametrize(
    "change",
    [
        {"data": ["x"]},
        {"retention_days": "abc"},
        {"retention_days": 10**9},
        {"retention_days": True},
        {"time": "not a time"},
    ],
)
def test_a_malformed_feed_message_is_refused_by_name_not_a_crash(change: dict[str, object]):
    message = {
        "exchange_id": "x-1",
        "type": "energy.consumption_anomaly.v1",
        "covenant": {"id": "drugslocaties-nh", "rule": "r"},
        "time": "2026-11-02",
        "data": {"municipality": "GM0361"},
        "retention_days": 30,
        **change,
    }
    with pytest.raises(RiecError, match="malformed"):
        item_row(RIEC, message, REGISTRY, lambda recipient, covenant, value: (False, None))
