"""The ``/reid`` pages: four eyes in the browser, the value shown once and never logged.

The database, users and workflow are those of the re-identification tests
(:mod:`tests.reid.conftest`, whose ``hub`` overrides the web one in this module).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.reid.workflow import Reidentification
from services.web.access_log import AccessLog
from services.web.app import create_web_app
from services.web.context import WebSettings
from tests.reid.conftest import KDF_COST, Hub, clock, hub, workflow  # noqa: F401
from tests.reid.helpers import canonical, delivered, everything_stored
from tests.web.conftest import SECRET, sign_in

COVENANT = "drugslocaties-nh"
RECIPIENT = "riec-nh"

Browser = Callable[[str], TestClient]


@pytest.fixture
def browser(hub: Hub, workflow: Reidentification) -> Browser:  # noqa: F811
    """A signed-in client per user name, on an app serving the re-identification pages."""

    def signed_in(name: str) -> TestClient:
        app = create_web_app(
            hub.engine, hub.keys, WebSettings(secret=SECRET, kdf_cost=KDF_COST), workflow
        )
        client = TestClient(app, follow_redirects=False)
        assert sign_in(client, name).status_code == 303
        return client

    return signed_in


def csrf(client: TestClient) -> str:
    page = client.get("/reid")
    assert page.status_code == 200
    token: str = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return token


def ean_record(hub: Hub) -> dict[str, Any]:  # noqa: F811
    return delivered(hub.records, RECIPIENT, COVENANT, "ean", reidentify=True)


def file_request(client: TestClient, hub: Hub) -> Any:  # noqa: F811
    return client.post(
        "/reid",
        data={
            "csrf": csrf(client),
            "recipient": RECIPIENT,
            "covenant": COVENANT,
            "pseudonym": ean_record(hub)["pseudonyms"]["ean"],
            "purpose": "verify a tampered meter before a site visit",
            "case": "RIEC-2026-0042",
        },
    )


def only_request_id(workflow: Reidentification) -> str:  # noqa: F811
    (found,) = workflow.listing()
    return found.id


def test_request_approve_reveal_once(
    hub: Hub,  # noqa: F811
    workflow: Reidentification,  # noqa: F811
    browser: Browser,
) -> None:
    record = ean_record(hub)
    value = canonical(hub.signals[record["signal_id"]], "ean", "ean")
    requester, approver = browser("riec-officer"), browser("drugs-officer")

    filed = file_request(requester, hub)
    assert filed.status_code == 303
    request_id = only_request_id(workflow)
    assert filed.headers["location"] == f"/reid?filed={request_id}"
    assert f"/reid/{request_id}/approve" in approver.get("/reid").text
    assert f"/reid/{request_id}/approve" not in requester.get("/reid").text

    approved = approver.post(f"/reid/{request_id}/approve", data={"csrf": csrf(approver)})
    assert approved.status_code == 303
    assert f"/reid/{request_id}/reveal" in requester.get("/reid").text

    shown = requester.post(f"/reid/{request_id}/reveal", data={"csrf": csrf(requester)})
    assert shown.status_code == 200
    assert value in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert value not in str(shown.url)

    again = requester.post(f"/reid/{request_id}/reveal", data={"csrf": csrf(requester)})
    assert again.status_code == 400
    assert "only once" in again.text
    assert value not in again.text

    routes = [e.route for e in AccessLog(hub.engine).entries()]
    assert {"reid-list", "reid-request", "reid-approve", "reid-reveal"} <= set(routes)
    assert value not in everything_stored(hub.engine)


def test_self_approval_is_refused_with_a_clear_message(
    hub: Hub,  # noqa: F811
    workflow: Reidentification,  # noqa: F811
    browser: Browser,
) -> None:
    admin = browser("admin")
    assert file_request(admin, hub).status_code == 303
    request_id = only_request_id(workflow)
    refused = admin.post(f"/reid/{request_id}/approve", data={"csrf": csrf(admin)})
    assert refused.status_code == 400
    assert "may not approve it (four eyes)" in refused.text
    assert workflow.get(request_id).state == "requested"


def test_reject_shows_the_reason(
    hub: Hub,  # noqa: F811
    workflow: Reidentification,  # noqa: F811
    browser: Browser,
) -> None:
    requester, approver = browser("riec-officer"), browser("admin")
    assert file_request(requester, hub).status_code == 303
    request_id = only_request_id(workflow)
    done = approver.post(
        f"/reid/{request_id}/reject", data={"csrf": csrf(approver), "reason": "no case yet"}
    )
    assert done.status_code == 303
    assert "rejected by admin: no case yet" in requester.get("/reid").text


def test_a_post_without_csrf_is_forbidden(
    hub: Hub,  # noqa: F811
    workflow: Reidentification,  # noqa: F811
    browser: Browser,
) -> None:
    requester, approver = browser("riec-officer"), browser("drugs-officer")
    assert file_request(requester, hub).status_code == 303
    request_id = only_request_id(workflow)
    assert approver.post(f"/reid/{request_id}/approve", data={}).status_code == 403
    assert requester.post("/reid", data={"recipient": RECIPIENT}).status_code == 403
    assert workflow.get(request_id).state == "requested"


def test_unknown_request_is_not_found(browser: Browser) -> None:
    admin = browser("admin")
    answer = admin.post("/reid/nope/approve", data={"csrf": csrf(admin)})
    assert answer.status_code == 404


def test_signed_out_is_sent_to_sign_in(
    hub: Hub,  # noqa: F811
    workflow: Reidentification,  # noqa: F811
) -> None:
    app = create_web_app(
        hub.engine, hub.keys, WebSettings(secret=SECRET, kdf_cost=KDF_COST), workflow
    )
    client = TestClient(app, follow_redirects=False)
    for answer in (client.get("/reid"), client.post("/reid/x/reveal", data={"csrf": "x"})):
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-in"


def test_covenant_manager_is_forbidden(browser: Browser) -> None:
    manager = browser("manager")
    assert manager.get("/reid").status_code == 403
    assert manager.post("/reid/x/approve", data={"csrf": "x"}).status_code == 403
    assert "/reid" not in manager.get("/report").text


def notice(page: Any) -> str | None:
    """The confirmation the list page shows, if any."""
    found = re.search(r'<p class="notice" role="status">(.*?)</p>', page.text, re.S)
    return " ".join(found.group(1).split()) if found else None


def test_each_step_is_confirmed_to_the_one_who_took_it(
    hub: Hub,  # noqa: F811
    workflow: Reidentification,  # noqa: F811
    browser: Browser,
) -> None:
    requester, approver = browser("riec-officer"), browser("drugs-officer")
    filed = file_request(requester, hub)
    request_id = only_request_id(workflow)
    until = workflow.get(request_id).expires_at.strftime("%Y-%m-%d %H:%M")
    shown = requester.get(filed.headers["location"])
    assert shown.status_code == 200
    assert notice(shown) == (
        f"Request {request_id} is filed. A second authorised user (a privacy officer of "
        f"{COVENANT}, or an admin) must approve it before {until} UTC; then you can reveal "
        "the value once."
    )
    assert notice(requester.get("/reid")) is None  # shown once, after the step
    assert notice(approver.get(filed.headers["location"])) is None  # not theirs to confirm

    approved = approver.post(f"/reid/{request_id}/approve", data={"csrf": csrf(approver)})
    assert approved.headers["location"] == f"/reid?approved={request_id}"
    assert notice(approver.get(approved.headers["location"])) == (
        f"Request {request_id} is approved. riec-officer can reveal the value once, "
        f"until {until} UTC."
    )
    assert notice(requester.get(approved.headers["location"])) is None

    assert file_request(requester, hub).status_code == 303
    second = next(r.id for r in workflow.listing() if r.id != request_id)
    rejected = approver.post(
        f"/reid/{second}/reject", data={"csrf": csrf(approver), "reason": "no case yet"}
    )
    assert rejected.headers["location"] == f"/reid?rejected={second}"
    assert notice(approver.get(rejected.headers["location"])) == (
        f"Request {second} is rejected; riec-officer sees your reason."
    )
    # a made-up or mismatched confirmation is not shown
    assert notice(approver.get(f"/reid?approved={second}")) is None
    assert notice(requester.get("/reid?filed=nope")) is None


def test_a_refused_request_is_not_confirmed(browser: Browser) -> None:
    requester = browser("riec-officer")
    refused = requester.post(
        "/reid",
        data={
            "csrf": csrf(requester),
            "recipient": RECIPIENT,
            "covenant": COVENANT,
            "pseudonym": "r1.not-a-pseudonym-anyone-received",
            "purpose": "verify a tampered meter",
            "case": "RIEC-2026-0042",
        },
    )
    assert refused.status_code == 400
    assert notice(refused) is None and 'class="error"' in refused.text
