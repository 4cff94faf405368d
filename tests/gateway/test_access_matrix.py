"""The gateway's access matrix: every route, every wrong caller, refused with the right status.

Routes are enumerated from the app, so a route added without a row in :data:`ROUTES` (or
:data:`PUBLIC`) fails :func:`test_every_route_of_the_app_is_in_the_matrix`. Each protected
route is tried without credentials, with a malformed and a revoked token, and with a token of
the other kind; publishing as another partner, or reading another recipient's feed through
the query, a cursor or ``Last-Event-ID`` naming its topic or partitions, yields nothing of it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from starlette.routing import Mount

from services.gateway.app import OPENAPI_URL, create_gateway_app
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.cursor import encode_cursor
from services.gateway.problems import PROBLEM_JSON
from services.gateway.testing import MemoryBroker
from services.router.topics import feed_topic, gateway_group, recipient_group
from tests.gateway.helpers import bearer, make_gateway, signal

pytestmark = pytest.mark.timeout(60)

Call = Callable[[TestClient, dict[str, str]], httpx.Response]


def _publish(http: TestClient, headers: dict[str, str]) -> httpx.Response:
    return http.post(
        "/v1/signals",
        content=orjson.dumps(signal(1)),
        headers={**headers, "Content-Type": "application/json"},
    )


ROUTES: dict[tuple[str, str], tuple[str, Call]] = {
    ("POST", "/v1/signals"): ("partner", _publish),
    ("GET", "/v1/feed"): ("recipient", lambda http, h: http.get("/v1/feed", headers=h)),
    ("GET", "/v1/feed/events"): (
        "recipient",
        lambda http, h: http.get("/v1/feed/events", headers=h),
    ),
}
"""Every protected route: the token kind it needs and a well-formed call of it."""

PUBLIC = {("GET", OPENAPI_URL), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
"""Routes anyone may call: the API description and the probes (no identifiers, no feed)."""

OWNER = {"partner": "liander", "recipient": "riec-nh"}
OTHER_KIND = {"partner": "riec-nh", "recipient": "liander"}


@pytest.fixture
def gateway(engine, mem_broker, monotonic) -> Gateway:
    """As conftest's, with event streams that end after their first read."""
    settings = GatewaySettings(rate=1000, burst=1000, stream_max_s=0.0, feed_max_wait_s=0.0)
    return make_gateway(engine, mem_broker, settings=settings, monotonic=monotonic)


def app_routes(gateway: Gateway) -> set[tuple[str, str]]:
    """``(method, path)`` of every route of the app, included routers flattened (HEAD, which
    FastAPI adds to GET, aside); a mount shows as method ``*``, so it needs its own row."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(create_gateway_app(gateway).routes):
        if isinstance(route.original_route, Mount):
            found.add(("*", route.original_route.path))
            continue
        assert route.methods and route.path, f"unexpected route {route.original_route!r}"
        found |= {(m, route.path) for m in route.methods - {"HEAD"}}
    return found


def test_every_route_of_the_app_is_in_the_matrix(gateway):
    routes = app_routes(gateway)
    unknown = routes - set(ROUTES) - PUBLIC
    assert not unknown, f"add these routes to ROUTES (with a call) or PUBLIC: {sorted(unknown)}"
    assert set(ROUTES) <= routes, "a protected route of the matrix is gone from the app"


def _problem(answer: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["detail"]
    if code is not None:
        assert body["code"] == code
    return body


@pytest.fixture(params=sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
def route(request: pytest.FixtureRequest) -> tuple[str, Call]:
    kind, call = ROUTES[request.param]
    return kind, call


def test_the_owner_gets_through(http, tokens, route):
    kind, call = route
    answer = call(http, bearer(tokens[OWNER[kind]]))
    assert answer.status_code in (200, 202), answer.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic bGlhbmRlcjpzZWNyZXQ="},
        {"Authorization": "Bearer skl_000000000000_" + "A" * 43},
        {"Authorization": "Token skl_000000000000_" + "A" * 43},
    ],
    ids=["none", "empty", "no-token", "basic", "unknown", "other-scheme"],
)
def test_no_or_a_malformed_token_is_401(http, tokens, mem_broker, route, headers):
    _, call = route
    body = _problem(call(http, headers), 401, "unauthenticated")
    assert "skl_" not in body["detail"]
    assert mem_broker.sends == 0


def test_a_revoked_token_is_401_at_once(http, gateway, tokens, mem_broker, route):
    kind, call = route
    token = tokens[OWNER[kind]]
    assert gateway.tokens.revoke(token.split("_")[1])
    answer = call(http, bearer(token))
    _problem(answer, 401, "unauthenticated")
    assert answer.headers["www-authenticate"] == "Bearer"
    assert token not in answer.text
    assert mem_broker.sends == 0


def test_a_token_of_the_other_kind_is_403(http, tokens, mem_broker, route):
    kind, call = route
    _problem(call(http, bearer(tokens[OTHER_KIND[kind]])), 403, "wrong_token_kind")
    assert mem_broker.sends == 0


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_problems(http, tokens, method):
    for path in {p for _, p in ROUTES}:
        _problem(http.request(method, path, headers=bearer(tokens["liander"])), 405)


def test_a_partner_cannot_publish_as_another_or_to_another_topic(http, tokens, mem_broker):
    vitens = {**bearer(tokens["vitens"]), "Content-Type": "application/json"}
    as_liander = http.post("/v1/signals", content=orjson.dumps(signal(1)), headers=vitens)
    _problem(as_liander, 403, "wrong_source")
    tricks = http.post(
        "/v1/signals?topic=signals.liander&source=liander&partner=liander",
        content=orjson.dumps(signal(2, source="vitens")),
        headers={**vitens, "X-Partner": "liander", "ce-source": "liander"},
    )
    assert tricks.status_code == 202, tricks.text
    batch = [signal(3, source="vitens"), signal(4), {**signal(5), "source": "vitens"}]
    mixed = http.post("/v1/signals", content=orjson.dumps(batch), headers=vitens).json()
    assert [p["code"] for p in mixed["rejected"]] == ["wrong_source"]
    assert mem_broker.records("signals.liander") == []
    assert len(mem_broker.records("signals.vitens")) == 3


def _b64(value: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def _fill_feeds(broker: MemoryBroker) -> None:
    for recipient in ("riec-nh", "gemeente-alkmaar"):
        for n in range(4):
            value = orjson.dumps({"for": recipient, "n": n})
            broker.append(feed_topic(recipient), value, partition=n % 2)


FORGED = {
    "other-recipients-cursor": encode_cursor({0: 1, 1: 1}),
    "topic-in-cursor": _b64({"v": 1, "o": {"0": 0}, "topic": feed_topic("gemeente-alkmaar")}),
    "recipient-in-cursor": _b64({"v": 1, "o": {"0": 0}, "recipient": "gemeente-alkmaar"}),
    "partition-beyond-own": encode_cursor({0: 0, 1: 0, 7: 0}),
    "huge-partition": _b64({"v": 1, "o": {str(2**40): 0}}),
    "negative-offset": _b64({"v": 1, "o": {"0": -1}}),
    "unicode-digit": _b64({"v": 1, "o": {"\u00b2": 0}}),
    "other-version": _b64({"v": 2, "o": {"0": 0}, "topic": feed_topic("gemeente-alkmaar")}),
}


@pytest.mark.parametrize("forged", sorted(FORGED))
@pytest.mark.parametrize("where", ["query", "last-event-id"])
def test_a_recipient_never_reads_another_recipients_feed(http, tokens, mem_broker, forged, where):
    _fill_feeds(mem_broker)
    cursor = FORGED[forged]
    own = bearer(tokens["riec-nh"])
    params = {
        "recipient": "gemeente-alkmaar",
        "topic": feed_topic("gemeente-alkmaar"),
        "group": recipient_group("gemeente-alkmaar"),
    }
    if where == "query":
        answers = [
            http.get("/v1/feed", params={**params, "cursor": cursor}, headers=own),
            http.get("/v1/feed/events", params={**params, "cursor": cursor}, headers=own),
        ]
    else:
        answers = [http.get("/v1/feed/events", headers={**own, "Last-Event-ID": cursor})]
    for answer in answers:
        assert answer.status_code in (200, 400), answer.text
        if answer.status_code == 400:
            _problem(answer, 400, "invalid_cursor")
        assert "gemeente-alkmaar" not in answer.text
        if answer.headers["content-type"] == "application/json":
            assert {m["for"] for m in answer.json()["messages"]} <= {"riec-nh"}
    assert set(mem_broker.committed) <= {(feed_topic("riec-nh"), gateway_group("riec-nh"))}


def test_forged_cursors_that_are_not_the_gateways_are_refused(http, tokens):
    own = bearer(tokens["riec-nh"])
    for name in ("huge-partition", "negative-offset", "unicode-digit", "other-version"):
        answer = http.get("/v1/feed", params={"cursor": FORGED[name]}, headers=own)
        _problem(answer, 400, "invalid_cursor")


def test_a_recipient_reads_its_own_feed_whole(http, tokens, mem_broker):
    """The positive side of the matrix above: the same calls do read one's own feed."""
    _fill_feeds(mem_broker)
    for name, expected in (("riec-nh", "riec-nh"), ("gemeente-alkmaar", "gemeente-alkmaar")):
        page = http.get("/v1/feed", headers=bearer(tokens[name])).json()
        assert sorted(m["n"] for m in page["messages"]) == [0, 1, 2, 3]
        assert {m["for"] for m in page["messages"]} == {expected}


def test_public_routes_disclose_no_feed_and_no_token(http, gateway, tokens, mem_broker):
    _fill_feeds(mem_broker)
    assert http.get("/v1/feed", headers=bearer(tokens["riec-nh"])).status_code == 200
    public = sorted(PUBLIC & app_routes(gateway))
    assert ("GET", OPENAPI_URL) in public
    for method, path in public:
        answer = http.request(method, path)
        assert answer.status_code in (200, 503), f"{method} {path}: {answer.status_code}"
        assert '"for"' not in answer.text and "skl_" not in answer.text
