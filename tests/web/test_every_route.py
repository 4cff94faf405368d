"""Every route of the app, enumerated from ``app.routes``: refused without a session, refused
for a role that may not use it, and allowed for one that may.

The table below says which roles each route is for. A route that is not in it fails
:func:`test_every_route_is_in_the_access_table`: a new route must be classified here before
it ships (deny by default).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from services.audit.store import SqlAuditStore
from services.config import Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.reid.workflow import Reidentification
from services.riec.cases import CaseFiles
from services.riec.scope import regions
from services.riec.wiring import barrier_plan
from services.riec.workplace import Workplace
from services.web.app import create_web_app
from services.web.context import WebSettings
from services.web.users import ADMIN, COVENANT_MANAGER, PRIVACY_OFFICER, RIEC_ANALYST, ROLES
from tests.router.helpers import COVENANTS, NOW
from tests.web.conftest import KDF_COST, SECRET, Hub, csrf_of, sign_in

RECORDS = (PRIVACY_OFFICER, ADMIN)
REID = (PRIVACY_OFFICER, ADMIN, RIEC_ANALYST)
RIEC = (RIEC_ANALYST, ADMIN)
EVERYONE = ROLES
PUBLIC = ()
"""Routes anyone may use, signed in or not."""

ACCESS: dict[tuple[str, str], tuple[str, ...]] = {
    ("GET", "/sign-in"): PUBLIC,
    ("POST", "/sign-in"): PUBLIC,
    ("POST", "/sign-out"): EVERYONE,
    ("GET", "/"): EVERYONE,
    ("GET", "/exchanges"): RECORDS,
    ("GET", "/api/exchanges"): RECORDS,
    ("GET", "/exchanges/{reference}"): RECORDS,
    ("GET", "/api/exchanges/{reference}"): RECORDS,
    ("GET", "/recipients"): RECORDS,
    ("GET", "/api/recipients"): RECORDS,
    ("GET", "/subjects"): RECORDS,
    ("POST", "/subjects"): RECORDS,
    ("POST", "/api/subjects"): RECORDS,
    ("GET", "/report"): EVERYONE,
    ("GET", "/report.csv"): EVERYONE,
    ("GET", "/api/report"): EVERYONE,
    ("GET", "/integrity"): EVERYONE,
    ("POST", "/integrity/verify"): EVERYONE,
    ("GET", "/api/integrity"): EVERYONE,
    ("POST", "/api/integrity/verify"): EVERYONE,
    ("GET", "/reid"): REID,
    ("POST", "/reid"): REID,
    ("POST", "/reid/{request_id}/approve"): REID,
    ("POST", "/reid/{request_id}/reject"): REID,
    ("POST", "/reid/{request_id}/reveal"): REID,
    # the RIEC workplace (services/riec): analysts of a RIEC, within its scope, and admins
    ("GET", "/riec"): RIEC,
    ("GET", "/api/riec/items"): RIEC,
    ("GET", "/riec/items/{item_id}"): RIEC,
    ("GET", "/api/riec/items/{item_id}"): RIEC,
    ("POST", "/riec/items/{item_id}/{step}"): RIEC,
    ("GET", "/riec/cases"): RIEC,
    ("GET", "/api/riec/cases"): RIEC,
    ("GET", "/riec/cases/{case_id}"): RIEC,
    ("GET", "/api/riec/cases/{case_id}"): RIEC,
    ("POST", "/riec/cases/{case_id}/{step}"): RIEC,
    ("POST", "/api/riec/items/{item_id}/{step}"): RIEC,
    ("POST", "/api/riec/cases/{case_id}/{step}"): RIEC,
    # the joint barrier plan: suppressed figures every role reads; analysts and admins add
    ("GET", "/plan"): EVERYONE,
    ("GET", "/api/plan"): EVERYONE,
    ("POST", "/plan"): RIEC,
    ("GET", "/coverage"): EVERYONE,
    ("GET", "/api/coverage"): EVERYONE,
    ("GET", "/indicators"): EVERYONE,
    ("GET", "/api/indicators"): EVERYONE,
    ("GET", "/barriers"): EVERYONE,
    ("GET", "/api/barriers"): EVERYONE,
    # operations (services/metrics): counts and health only, for Prometheus and probes
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
}
USER_OF_ROLE = {
    ADMIN: "admin",
    COVENANT_MANAGER: "manager",
    PRIVACY_OFFICER: "schuren",
    RIEC_ANALYST: "analyst",
}
ROLE_REFUSED_PAGE = "Your role may not use this page."
ROLE_REFUSED_JSON = {"error": "your role may not use this"}


@pytest.fixture(scope="module")
def app(hub: Hub) -> Iterator[FastAPI]:
    """The whole app, re-identification pages included."""
    loaded = load_policy(
        COVENANTS,
        Paths.from_env({}).schemas,
        Paths.from_env({}).reference,
        Pseudonymiser(hub.keys),
        today=NOW.date(),
        demo=True,
    )
    assert loaded.policy is not None
    reid = Reidentification(
        hub.engine, SqlAuditStore(hub.engine), Pseudonymiser(hub.keys), loaded.policy.covenants
    )
    audit = SqlAuditStore(hub.engine)
    workplace = Workplace(
        hub.engine, audit, loaded.registry, regions(loaded.policy.covenants, loaded.reference)
    )
    built = create_web_app(
        hub.engine,
        hub.keys,
        WebSettings(secret=SECRET, kdf_cost=KDF_COST),
        reid,
        CaseFiles(workplace, reid),
        barrier_plan(workplace, Paths.from_env({})),
    )
    yield built
    assert built.state.context.integrity.join(60)


def endpoints(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, path template)`` of every route in ``app.routes``, included routers
    flattened (HEAD, which FastAPI adds to GET, aside)."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(app.routes):
        if isinstance(route.original_route, Mount):
            continue
        assert route.methods and route.path, f"unexpected route {route.original_route!r}"
        found += [(m, route.path) for m in sorted(route.methods - {"HEAD"})]
    return found


def mounts(app: FastAPI) -> list[str]:
    return [
        route.original_route.path
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, Mount)
    ]


def concrete(path: str) -> str:
    """A path template with every parameter filled in."""
    return re.sub(r"\{[^}]+\}", "1", path)


def call(client: TestClient, method: str, path: str, csrf: str = "") -> httpx.Response:
    response: httpx.Response
    if method == "GET":
        response = client.get(path)
    else:
        headers = {"x-csrf-token": csrf} if csrf else {}
        response = client.request(method, path, data={"csrf": csrf}, headers=headers)
    return response


def signed_in(app: FastAPI, name: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, name).status_code == 303
    return client


def test_every_route_is_in_the_access_table(app: FastAPI):
    assert set(endpoints(app)) == set(ACCESS)


def test_static_files_are_the_only_mount(app: FastAPI):
    assert mounts(app) == ["/static"]
    client = TestClient(app, follow_redirects=False)
    assert client.get("/static/schakel.css").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_without_a_session_every_route_but_sign_in_is_refused(app: FastAPI):
    client = TestClient(app, follow_redirects=False)
    checked = 0
    for method, path in endpoints(app):
        if ACCESS.get((method, path)) == PUBLIC:
            continue
        response = call(client, method, concrete(path))
        where = f"{method} {path}"
        if path.startswith("/api/"):
            assert response.status_code == 401, where
            assert response.json() == {"error": "sign in first"}, where
        else:
            assert response.status_code == 303, where
            assert response.headers["location"] == "/sign-in", where
        checked += 1
    assert checked == sum(1 for roles in ACCESS.values() if roles != PUBLIC)


def test_a_wrong_role_is_refused_on_every_route_even_with_a_valid_csrf_token(app: FastAPI):
    refused = 0
    for role, name in USER_OF_ROLE.items():
        client = signed_in(app, name)
        token = csrf_of(client)
        for method, path in endpoints(app):
            allowed = ACCESS[(method, path)]
            if allowed == PUBLIC or role in allowed:
                continue
            response = call(client, method, concrete(path), token)
            where = f"{name} {method} {path}"
            assert response.status_code == 403, where
            if path.startswith("/api/"):
                assert response.json() == ROLE_REFUSED_JSON, where
            else:
                assert ROLE_REFUSED_PAGE in response.text, where
            refused += 1
    assert refused == sum(
        1 for role in USER_OF_ROLE for roles in ACCESS.values() if roles and role not in roles
    )


def test_the_right_role_gets_past_the_gate_on_every_route(app: FastAPI):
    for role, name in USER_OF_ROLE.items():
        client = signed_in(app, name)
        token = csrf_of(client)
        ordered = sorted(endpoints(app), key=lambda e: e == ("POST", "/sign-out"))
        for method, path in ordered:
            allowed = ACCESS[(method, path)]
            if allowed == PUBLIC or role not in allowed:
                continue
            response = call(client, method, concrete(path), token)
            where = f"{name} {method} {path}"
            assert response.status_code not in (401, 403), where
            assert response.headers.get("location") != "/sign-in" or path == "/sign-out", where


def test_the_wrong_method_is_refused(app: FastAPI):
    client = signed_in(app, "admin")
    for method, path in endpoints(app):
        other = "DELETE" if method != "DELETE" else "PUT"
        response = client.request(other, concrete(path))
        assert response.status_code == 405, f"{other} {path}"
