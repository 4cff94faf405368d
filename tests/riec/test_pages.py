"""The workplace's pages and API over HTTP: what an analyst sees and does, and what an analyst
of another RIEC is refused — in pages and API alike."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from services.riec.model import ItemState, QueueFilters
from tests.riec.helpers import PASSWORD, Site, user, web_app
from tests.web.conftest import csrf_of

Client = Callable[[str], TestClient]


@pytest.fixture
def signed_in(site: Site) -> Client:
    app = web_app(site)

    def client(name: str) -> TestClient:
        made = TestClient(app, follow_redirects=False)
        form = made.get("/sign-in")
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        response = made.post("/sign-in", data={"name": name, "password": PASSWORD, "csrf": token})
        assert response.status_code == 303
        return made

    return client


def newest(site: Site, **filters: object) -> str:
    return site.workplace.queue(user(site, "ana"), QueueFilters(**filters), limit=1)[0].id  # type: ignore[arg-type]


def test_an_analyst_lands_on_the_queue_and_sees_its_items(site: Site, signed_in: Client):
    ana = signed_in("ana")
    assert ana.get("/").headers["location"] == "/riec"
    page = ana.get("/riec?type=hub.stacked_location_alert.v1")
    assert page.status_code == 200
    alerts = site.workplace.queue(
        user(site, "ana"), QueueFilters(signal_type="hub.stacked_location_alert.v1")
    )
    assert alerts and all(f"/riec/items/{a.id}" in page.text for a in alerts)
    api = ana.get("/api/riec/items", params={"type": "hub.stacked_location_alert.v1"}).json()
    assert [i["id"] for i in api["items"]] == [a.id for a in alerts]
    assert api["items"][0]["message"] == alerts[0].message


def test_another_riecs_analyst_is_refused_in_pages_and_api(site: Site, signed_in: Client):
    item_id = newest(site)
    stranger = signed_in("other-riec")
    assert item_id not in stranger.get("/riec").text
    assert stranger.get("/api/riec/items").json()["items"] == []
    assert stranger.get(f"/riec/items/{item_id}").status_code == 404
    assert stranger.get(f"/api/riec/items/{item_id}").status_code == 404
    token = csrf_of(stranger)
    taken = stranger.post(f"/riec/items/{item_id}/take", data={"csrf": token})
    assert taken.status_code == 404
    assert site.workplace.item(user(site, "ana"), item_id).state is ItemState.NEW
    case = site.cases.open(user(site, "ana"), item_id, "barn in the polder")
    assert stranger.get(f"/riec/cases/{case.id}").status_code == 404
    assert stranger.get(f"/api/riec/cases/{case.id}").status_code == 404
    assert stranger.get("/api/riec/cases").json()["cases"] == []
    noted = stranger.post(f"/riec/cases/{case.id}/note", data={"csrf": token, "text": "x"})
    assert noted.status_code == 404
    assert [e.step for e in site.cases.entries(case.id)] == ["open-case"]


def test_a_privacy_officer_has_no_queue(signed_in: Client):
    officer = signed_in("drugs-officer")
    assert officer.get("/riec").status_code == 403
    assert officer.get("/api/riec/items").status_code == 403


def test_triage_through_the_pages(site: Site, signed_in: Client):
    item_id = newest(site)
    ana = signed_in("ana")
    token = csrf_of(ana)
    taken = ana.post(f"/riec/items/{item_id}/take", data={"csrf": token})
    assert taken.headers["location"] == f"/riec/items/{item_id}?done=take"
    page = ana.get(taken.headers["location"])
    assert "being assessed, held by you" in page.text
    refused = ana.post(f"/riec/items/{item_id}/dismiss", data={"csrf": token, "reason": ""})
    assert refused.status_code == 400 and "a reason is needed" in refused.text
    no_token = ana.post(f"/riec/items/{item_id}/dismiss", data={"reason": "x"})
    assert no_token.status_code == 403
    ana.post(f"/riec/items/{item_id}/dismiss", data={"csrf": token, "reason": "known grower"})
    history = ana.get(f"/api/riec/items/{item_id}").json()["history"]
    assert [(h["actor"], h["step"], h["detail"]) for h in history] == [
        ("ana", "take", None), ("ana", "dismiss", "known grower"),
    ]  # fmt: skip
    assert ana.get("/riec?state=dismissed").text.count("/riec/items/") == 1


def test_bad_filters_are_named(signed_in: Client):
    ana = signed_in("ana")
    for query, message in (
        ("min_score=high", "min_score must be a number"),
        ("max_age=-3", "max_age must be a whole number"),
        ("state=closed", "state must be one of"),
        ("before=yesterday", "before must be a cursor"),
    ):
        page = ana.get(f"/riec?{query}")
        assert page.status_code == 400 and message in page.text, query
        assert ana.get(f"/api/riec/items?{query}").json()["error"].startswith(message.split()[0])


def test_a_case_from_the_pages_and_the_officer_sees_every_step(site: Site, signed_in: Client):
    item_id = newest(site, signal_type="hub.stacked_location_alert.v1")
    ana = signed_in("ana")
    token = csrf_of(ana)
    opened = ana.post(f"/riec/items/{item_id}/case", data={"csrf": token, "title": "Schuur"})
    case_url = opened.headers["location"].split("?")[0]
    case_id = case_url.rsplit("/", 1)[1]
    assert "The case is open" in ana.get(opened.headers["location"]).text
    ana.post(f"{case_url}/note", data={"csrf": token, "text": "neighbour saw a van at night"})
    ana.post(f"{case_url}/decision", data={"csrf": token, "text": "ask police for a check"})
    body = ana.get(f"/api{case_url}").json()
    assert [e["kind"] for e in body["entries"]] == ["open-case", "note", "decision"]
    assert [i["id"] for i in body["items"]] == [item_id]
    officer = signed_in("drugs-officer")
    found = officer.get("/api/exchanges", params={"covenant": "drugslocaties-nh"}).json()
    mine = [r for r in found["records"] if r["action"].startswith("riec-")]
    assert {r["action"] for r in mine} == {
        "riec-open-case",
        "riec-to-case",
        "riec-note",
        "riec-decision",
    }
    assert all(r["riec"]["case"] == case_id for r in mine)
    assert all("neighbour" not in str(r) for r in mine)  # notes stay in the case file
