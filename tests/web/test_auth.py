"""Sign-in, sessions, CSRF and roles of the web workplace."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from services.database.tables.web import web_sessions
from services.web.sessions import SESSION_COOKIE, token_hash
from tests.web.conftest import PASSWORD, Hub, csrf_of, make_app, sign_in

RECORD_PAGES = ["/exchanges", "/exchanges/1", "/recipients?recipient=riec-nh", "/subjects"]
RECORD_API = ["/api/exchanges", "/api/exchanges/1", "/api/recipients?recipient=riec-nh"]
EVERY_ROLE_PAGES = ["/report?covenant=drugslocaties-nh", "/report.csv?covenant=x", "/integrity"]
EVERY_ROLE_API = ["/api/report?covenant=drugslocaties-nh", "/api/integrity"]


def test_sign_in_succeeds_with_the_right_password(client: TestClient):
    response = sign_in(client, "admin")
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert client.get("/exchanges").status_code == 200


@pytest.mark.parametrize(("name", "password"), [("admin", "wrong password!"), ("ghost", PASSWORD)])
def test_sign_in_fails_alike_for_a_wrong_password_and_an_unknown_name(client, name, password):
    response = sign_in(client, name, password)
    assert response.status_code == 401
    assert "Unknown name or wrong password." in response.text
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert client.get("/exchanges").status_code == 303


def test_sign_in_without_its_csrf_token_is_refused(client: TestClient):
    client.get("/sign-in")
    response = client.post("/sign-in", data={"name": "admin", "password": PASSWORD})
    assert response.status_code == 403
    forged = client.post("/sign-in", data={"name": "admin", "password": PASSWORD, "csrf": "x"})
    assert forged.status_code == 403


@dataclass
class Clock:
    """A clock the tests move by hand."""

    now: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_an_unused_session_expires(hub: Hub):
    clock = Clock()
    client = make_app(hub, clock, idle_seconds=60, session_seconds=3600)
    assert sign_in(client, "admin").status_code == 303
    for _ in range(5):  # in use: kept alive past the idle limit
        clock.advance(50)
        assert client.get("/api/exchanges").status_code == 200
    clock.advance(61)
    assert client.get("/exchanges").status_code == 303
    assert client.get("/api/exchanges").status_code == 401


def test_a_session_in_use_still_ends_at_its_absolute_limit(hub: Hub):
    clock = Clock()
    client = make_app(hub, clock, idle_seconds=60, session_seconds=120)
    assert sign_in(client, "admin").status_code == 303
    clock.advance(59)
    assert client.get("/api/exchanges").status_code == 200
    clock.advance(59)
    assert client.get("/api/exchanges").status_code == 200
    clock.advance(3)
    assert client.get("/api/exchanges").status_code == 401


def test_a_made_up_cookie_or_the_stored_hash_is_refused(as_user, hub: Hub):
    as_user("admin")
    with hub.engine.connect() as connection:
        hashes = connection.execute(select(web_sessions.c.token_hash)).scalars().all()
    client = make_app(hub)
    for forged in [secrets.token_urlsafe(32), *hashes[-3:], "", "x" * 5000]:
        client.cookies.set(SESSION_COOKIE, forged)
        assert client.get("/api/exchanges").status_code == 401


def test_only_a_hash_of_the_session_token_is_stored(as_user, hub: Hub):
    client = as_user("admin")
    token = client.cookies[SESSION_COOKIE]
    with hub.engine.connect() as connection:
        rows = connection.execute(select(web_sessions)).all()
    assert token_hash(token) in {row.token_hash for row in rows}
    assert token not in repr(rows)
    assert csrf_of(client) not in repr(rows)


def test_sign_out_needs_the_csrf_token_and_ends_the_session(as_user):
    client = as_user("admin")
    assert client.post("/sign-out", data={}).status_code == 403
    assert client.post("/sign-out", data={"csrf": "wrong"}).status_code == 403
    response = client.post("/sign-out", data={"csrf": csrf_of(client)})
    assert response.status_code == 303
    assert client.get("/exchanges").status_code == 303


def test_a_stolen_cookie_stops_working_after_sign_out(as_user, hub: Hub):
    client = as_user("admin")
    thief = make_app(hub)
    thief.cookies.set(SESSION_COOKIE, client.cookies[SESSION_COOKIE])
    assert thief.get("/api/exchanges").status_code == 200
    other = as_user("admin")  # the same user's other session is not affected
    assert client.post("/sign-out", data={"csrf": csrf_of(client)}).status_code == 303
    assert thief.get("/api/exchanges").status_code == 401
    assert thief.get("/exchanges").status_code == 303
    assert other.get("/api/exchanges").status_code == 200


def test_each_session_has_its_own_csrf_token(as_user):
    first, second = as_user("admin"), as_user("admin")
    assert csrf_of(first) != csrf_of(second)
    assert second.post("/sign-out", data={"csrf": csrf_of(first)}).status_code == 403


def test_subject_look_up_needs_the_csrf_token(as_user):
    client = as_user("admin")
    form = {"kind": "ean", "identifier": "871687400001234566"}
    assert client.post("/subjects", data=form).status_code == 403
    assert client.post("/subjects", data={**form, "csrf": "nope"}).status_code == 403
    json_body = {"kind": "ean", "identifier": "871687400001234566"}
    assert client.post("/api/subjects", json=json_body).status_code == 403
    headers = {"x-csrf-token": csrf_of(client)}
    assert client.post("/api/subjects", json=json_body, headers=headers).status_code in (200, 400)


@pytest.mark.parametrize("url", RECORD_PAGES + EVERY_ROLE_PAGES)
def test_every_page_sends_the_unsigned_in_to_sign_in(client: TestClient, url: str):
    response = client.get(url)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"


@pytest.mark.parametrize("url", RECORD_API + EVERY_ROLE_API)
def test_every_json_endpoint_refuses_without_a_session(client: TestClient, url: str):
    assert client.get(url).status_code == 401


def test_posts_refuse_without_a_session(client: TestClient):
    assert client.post("/subjects", data={"kind": "ean", "identifier": "1"}).status_code == 303
    assert client.post("/api/subjects", json={"kind": "ean"}).status_code == 401
    assert client.post("/sign-out", data={}).status_code == 303


@pytest.mark.parametrize("url", RECORD_PAGES + RECORD_API)
def test_a_covenant_manager_sees_no_individual_records(as_user, url: str):
    assert as_user("manager").get(url).status_code == 403


def test_a_covenant_manager_sees_reports_and_integrity(as_user):
    client = as_user("manager")
    for url in ["/report?covenant=drugslocaties-nh", "/integrity", *EVERY_ROLE_API]:
        assert client.get(url).status_code == 200, url
    assert client.get("/").headers["location"] == "/report"


def test_pages_carry_protective_headers(as_user):
    response = as_user("admin").get("/exchanges")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"


def test_signing_in_again_ends_the_session_it_replaces(as_user, hub: Hub):
    client = as_user("admin")
    before = client.cookies[SESSION_COOKIE]
    assert sign_in(client, "manager").status_code == 303
    after = client.cookies[SESSION_COOKIE]
    assert after != before
    assert client.get("/api/integrity").status_code == 200
    assert client.get("/api/exchanges").status_code == 403  # now the manager
    stale = make_app(hub)
    stale.cookies.set(SESSION_COOKIE, before)
    assert stale.get("/api/exchanges").status_code == 401
