"""The workplace's steps over HTTP: as JSON (the same roles, scope, CSRF and audit as the
forms), the holder enforced in pages and API, and a refusal on an item outside reach a clean
404 — never a 500."""

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
        made = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
        form = made.get("/sign-in")
        token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        response = made.post("/sign-in", data={"name": name, "password": PASSWORD, "csrf": token})
        assert response.status_code == 303
        return made

    return client


def newest(site: Site, **filters: object) -> str:
    return site.workplace.queue(user(site, "ana"), QueueFilters(**filters), limit=1)[0].id  # type: ignore[arg-type]


def post(client: TestClient, path: str, body: object, token: str | None = None) -> object:
    headers = {"x-csrf-token": csrf_of(client) if token is None else token}
    return client.post(path, json=body, headers=headers)


def test_triage_and_case_steps_as_json_are_audited(site: Site, signed_in: Client):
    item_id = newest(site, signal_type="hub.stacked_location_alert.v1")
    ana = signed_in("ana")
    taken = ana.post(f"/api/riec/items/{item_id}/take", headers={"x-csrf-token": csrf_of(ana)})
    assert taken.status_code == 200
    assert (taken.json()["item"]["state"], taken.json()["item"]["holder"]) == ("assessing", "ana")
    opened = post(ana, f"/api/riec/items/{item_id}/case", {"title": "Schuur"})
    assert opened.status_code == 200  # type: ignore[attr-defined]
    case = opened.json()["case"]  # type: ignore[attr-defined]
    assert case["state"] == "open" and opened.json()["item"]["case"] == case["id"]  # type: ignore[attr-defined]
    noted = post(ana, f"/api/riec/cases/{case['id']}/note", {"text": "van at night"})
    assert noted.status_code == 200  # type: ignore[attr-defined]
    [pseudonym, *_] = site.workplace.item(user(site, "ana"), item_id).pseudonyms
    filed = post(
        ana, f"/api/riec/cases/{case['id']}/reid", {"pseudonym": pseudonym, "reason": "visit"}
    )
    request_id = filed.json()["request"]  # type: ignore[attr-defined]
    pending = site.reid.get(request_id)
    assert (pending.case_ref, pending.requester) == (case["id"], "ana")
    closed = post(ana, f"/api/riec/cases/{case['id']}/outcome",
                  {"outcome": "no-finding", "text": "checked"})  # fmt: skip
    assert closed.json()["case"]["state"] == "closed"  # type: ignore[attr-defined]
    steps = [e.step for e in site.cases.entries(case["id"])]
    assert steps[:2] == ["open-case", "note"] and steps[-1] == "outcome"
    actions = [
        r["action"] for _, r in site.workplace.audit.records(limit=100_000)
        if r["action"].startswith("riec-") and r["riec"].get("case", r["riec"].get("item"))
        in (case["id"], item_id)
    ]  # fmt: skip
    assert actions[:4] == ["riec-take", "riec-open-case", "riec-to-case", "riec-note"]
    assert actions[-1] == "riec-outcome"


def test_json_steps_refuse_bad_input_by_name(site: Site, signed_in: Client):
    item_id = newest(site)
    ana = signed_in("ana")
    token = csrf_of(ana)
    no_token = ana.post(f"/api/riec/items/{item_id}/take", json={})
    assert no_token.status_code == 403
    assert site.workplace.item(user(site, "ana"), item_id).state is ItemState.NEW
    for body, status, message in (
        ({"reason": ""}, 400, "a reason is needed"),
        ({"reason": 3}, 400, "JSON object of string fields"),
        (["x"], 400, "JSON object of string fields"),
    ):
        answer = post(ana, f"/api/riec/items/{item_id}/dismiss", body, token)
        assert answer.status_code == status, body  # type: ignore[attr-defined]
        assert message in answer.json()["error"], body  # type: ignore[attr-defined]
    unknown = post(ana, f"/api/riec/items/{item_id}/burn", {}, token)
    assert unknown.status_code == 404  # type: ignore[attr-defined]
    assert "no item step 'burn'" in unknown.json()["error"]  # type: ignore[attr-defined]
    assert site.workplace.history(item_id) == []


def test_another_riecs_analyst_is_refused_every_json_step(site: Site, signed_in: Client):
    item_id = newest(site)
    case = site.cases.open(user(site, "ana"), item_id, "barn")
    stranger = signed_in("other-riec")
    token = csrf_of(stranger)
    for step, body in (("take", {}), ("dismiss", {"reason": "x"}), ("case", {"title": "t"}),
                       ("takeover", {"reason": "x"})):  # fmt: skip
        other = newest(site, state=ItemState.NEW)
        answer = post(stranger, f"/api/riec/items/{other}/{step}", body, token)
        assert answer.status_code == 404, step  # type: ignore[attr-defined]
        assert answer.json() == {  # type: ignore[attr-defined]
            "error": f"no item {other!r} in your scope. Fix: pick one from the queue."
        }
    for step, body in (("note", {"text": "x"}), ("outcome", {"outcome": "finding", "text": "x"}),
                       ("handover", {"pseudonym": "x", "measure": "closure_13b"})):  # fmt: skip
        answer = post(stranger, f"/api/riec/cases/{case.id}/{step}", body, token)
        assert answer.status_code == 404, step  # type: ignore[attr-defined]
    assert [e.step for e in site.cases.entries(case.id)] == ["open-case"]
    assert site.published == []
    assert not [
        r for _, r in site.workplace.audit.records(limit=100_000) if r["actor"] == "other-riec"
    ]


def test_the_holder_is_enforced_in_pages_and_api(site: Site, signed_in: Client):
    item_id = newest(site)
    ana, bo = signed_in("ana"), signed_in("bo")
    ana.post(f"/riec/items/{item_id}/take", data={"csrf": csrf_of(ana)})
    token = csrf_of(bo)
    page = bo.post(f"/riec/items/{item_id}/dismiss", data={"csrf": token, "reason": "meh"})
    assert page.status_code == 409 and "held by ana" in page.text
    assert f'action="/riec/items/{item_id}/takeover"' in page.text
    api = post(bo, f"/api/riec/items/{item_id}/dismiss", {"reason": "meh"}, token)
    assert api.status_code == 409 and "held by ana" in api.json()["error"]  # type: ignore[attr-defined]
    bundled = post(bo, f"/api/riec/items/{item_id}/case", {"title": "mine now"}, token)
    assert bundled.status_code == 409  # type: ignore[attr-defined]
    assert site.cases.listing(user(site, "bo")) == []
    over = bo.post(f"/riec/items/{item_id}/takeover", data={"csrf": token, "reason": "leave"})
    assert over.headers["location"] == f"/riec/items/{item_id}?done=takeover"
    back = post(ana, f"/api/riec/items/{item_id}/takeover", {"reason": "back from leave"})
    assert back.json()["item"]["holder"] == "ana"  # type: ignore[attr-defined]
    steps = [(e.actor, e.step) for e in site.workplace.history(item_id)]
    assert steps == [("ana", "take"), ("bo", "takeover"), ("ana", "takeover")]


def test_a_refusal_on_an_item_outside_reach_is_a_clean_404(site: Site, signed_in: Client):
    item_id = newest(site)
    stranger = signed_in("other-riec")
    token = csrf_of(stranger)
    for step, data in (("dismiss", {"reason": ""}), ("reopen", {"reason": " "}),
                       ("takeover", {"reason": ""})):  # fmt: skip
        page = stranger.post(f"/riec/items/{item_id}/{step}", data={"csrf": token, **data})
        assert page.status_code == 404, step
        assert "There is no item here that you may see." in page.text
        assert f"no item {item_id!r} in your scope" in page.text.replace("&#39;", "'")
    ana = signed_in("ana")
    other = site.workplace.queue(user(site, "ana"), QueueFilters(), limit=2)[1].id
    foreign = site.cases.open(user(site, "admin"), other, "x")
    stranger_case = stranger.post(
        f"/riec/items/{item_id}/case", data={"csrf": token, "case": foreign.id}
    )
    assert stranger_case.status_code == 404
    missing_case = ana.post(
        f"/riec/items/{item_id}/case", data={"csrf": csrf_of(ana), "case": "case-2026-nope"}
    )
    assert missing_case.status_code == 404 and "There is no case here" in missing_case.text
    assert site.workplace.item(user(site, "ana"), item_id).state is ItemState.NEW


def test_the_access_log_holds_only_ids_never_text_typed_into_the_path(
    site: Site, signed_in: Client
):
    from services.web.access_log import AccessLog

    item_id = newest(site)
    case = site.cases.open(user(site, "ana"), item_id, "barn")
    ana = signed_in("ana")
    token = csrf_of(ana)
    typed = "Jan de Vries, Kerkstraat 12"
    for path in (f"/api/riec/items/{typed}/take", f"/api/riec/cases/{typed}/note",
                 f"/api/riec/cases/{case.id}x/note"):  # fmt: skip
        answer = post(ana, path, {"text": "x"}, token)
        assert answer.status_code == 404, path  # type: ignore[attr-defined]
    assert post(ana, f"/api/riec/cases/{case.id}/note", {"text": "x"}, token).status_code == 200  # type: ignore[attr-defined]
    other = newest(site, state=ItemState.NEW)
    assert post(ana, f"/api/riec/items/{other}/take", {}, token).status_code == 200  # type: ignore[attr-defined]
    logged = [e.detail for e in AccessLog(site.engine).entries(user="ana") if "api/riec" in e.route]
    assert {"item": other} in logged and {"case": case.id} in logged
    assert logged.count({"item": "<not an id>", "refused": True}) == 1
    assert logged.count({"case": "<not an id>", "refused": True}) == 2
    assert "Kerkstraat" not in str(AccessLog(site.engine).entries(limit=1000))


def test_form_steps_and_queue_filters_log_no_text_typed_into_them(site: Site, signed_in: Client):
    """The pages' own POSTs and the queue's filters enter the access log too: a refused step
    on a path segment that is no id, or a filter that is no known value, must not carry what
    was typed (a name, an address) into it."""
    from services.web.access_log import AccessLog

    item_id = newest(site)
    case = site.cases.open(user(site, "ana"), item_id, "barn")
    ana = signed_in("ana")
    token = csrf_of(ana)
    typed = "Jan de Vries, Kerkstraat 12"
    for path in (f"/riec/items/{typed}/take", f"/riec/items/{typed}/dismiss",
                 f"/riec/cases/{typed}/note", f"/riec/cases/{case.id}x/note"):  # fmt: skip
        answer = ana.post(path, data={"csrf": token, "text": "x", "reason": "x"})
        assert answer.status_code == 404, path
    for name in ("municipality", "step", "type"):
        for route in ("/riec", "/api/riec/items"):
            refused = ana.get(route, params={name: typed})
            assert refused.status_code == 400, (route, name)
    assert ana.get("/api/riec/items", params={"municipality": "GM0363"}).status_code == 200
    assert ana.get("/api/riec/items", params={"step": "cannabis.fit_out"}).status_code == 200
    entries = AccessLog(site.engine).entries(limit=1000)
    assert "Kerkstraat" not in str(entries)
    logged = [e.detail for e in entries if e.route.startswith("riec-")]
    assert {"item": "<not an id>", "refused": True} in logged
    assert logged.count({"case": "<not an id>", "refused": True}) == 2
