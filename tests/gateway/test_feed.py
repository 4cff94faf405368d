"""GET /v1/feed: cursor paging, long-poll, isolation between recipients, cursors."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from services.gateway.cursor import decode_cursor, encode_cursor
from services.gateway.problems import Problem
from tests.gateway.helpers import bearer

pytestmark = pytest.mark.timeout(30)


def fill(broker, recipient: str, count: int, *, partitions: int = 2) -> list[str]:
    ids = []
    for n in range(count):
        exchange_id = f"{recipient}-x{n:03d}"
        broker.append(
            f"feed.{recipient}",
            orjson.dumps({"exchange_id": exchange_id, "recipient": recipient}),
            partition=n % partitions,
        )
        ids.append(exchange_id)
    return ids


def read_all(http, token: str, *, limit: int) -> tuple[list[str], int, str | None]:
    seen: list[str] = []
    cursor = None
    pages = 0
    for _ in range(100):
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        page = http.get("/v1/feed", params=params, headers=bearer(token))
        assert page.status_code == 200, page.text
        body = page.json()
        cursor = body["cursor"]
        if not body["messages"]:
            break
        pages += 1
        seen.extend(m["exchange_id"] for m in body["messages"])
    return seen, pages, cursor


def test_pages_through_the_whole_feed_once_in_partition_order(http, tokens, mem_broker):
    ids = fill(mem_broker, "riec-nh", 7)
    seen, pages, _ = read_all(http, tokens["riec-nh"], limit=3)
    assert seen == [ids[n] for n in (0, 2, 4, 6, 1, 3, 5)], "partition 0, then partition 1"
    assert pages == 3


def test_the_cursor_resumes_after_what_was_read(http, tokens, mem_broker):
    fill(mem_broker, "riec-nh", 4)
    _, _, cursor = read_all(http, tokens["riec-nh"], limit=10)
    more = fill(mem_broker, "riec-nh", 2)  # same ids again as new messages, read from cursor
    page = http.get("/v1/feed", params={"cursor": cursor}, headers=bearer(tokens["riec-nh"]))
    assert [m["exchange_id"] for m in page.json()["messages"]] == more


def test_a_recipient_never_sees_another_recipients_feed(http, tokens, mem_broker):
    mine = fill(mem_broker, "riec-nh", 3)
    theirs = fill(mem_broker, "gemeente-alkmaar", 5)
    seen_mine, _, cursor_mine = read_all(http, tokens["riec-nh"], limit=100)
    seen_theirs, _, _ = read_all(http, tokens["gemeente-alkmaar"], limit=100)
    assert sorted(seen_mine) == sorted(mine)
    assert sorted(seen_theirs) == sorted(theirs)
    # another recipient's cursor moves only through one's own feed
    again = http.get(
        "/v1/feed",
        params={"cursor": encode_cursor({0: 0, 1: 0})},
        headers=bearer(tokens["riec-nh"]),
    )
    assert {m["recipient"] for m in again.json()["messages"]} == {"riec-nh"}
    assert cursor_mine


def test_long_poll_returns_when_a_message_arrives(http, tokens, mem_broker):
    _, _, cursor = read_all(http, tokens["riec-nh"], limit=10)
    timer = threading.Timer(0.3, fill, args=(mem_broker, "riec-nh", 1))
    timer.start()
    started = time.monotonic()
    page = http.get(
        "/v1/feed", params={"cursor": cursor, "wait": 10}, headers=bearer(tokens["riec-nh"])
    )
    took = time.monotonic() - started
    timer.join()
    assert [m["exchange_id"] for m in page.json()["messages"]] == ["riec-nh-x000"]
    assert 0.25 < took < 5


def test_long_poll_gives_an_empty_page_after_the_wait(http, tokens):
    started = time.monotonic()
    page = http.get("/v1/feed", params={"wait": 0.3}, headers=bearer(tokens["riec-nh"]))
    assert page.status_code == 200 and page.json()["messages"] == []
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("cursor", ["%%%", "bm9wZQ", encode_cursor({0: 1})[:-3] + "xyz"])
def test_a_cursor_not_from_the_gateway_is_400(http, tokens, cursor):
    page = http.get("/v1/feed", params={"cursor": cursor}, headers=bearer(tokens["riec-nh"]))
    assert page.status_code == 400
    assert page.json()["code"] == "invalid_cursor"


def test_cursors_round_trip_and_refuse_negative_offsets():
    assert decode_cursor(encode_cursor({0: 5, 3: 0})) == {0: 5, 3: 0}
    assert decode_cursor(None) == {}
    with pytest.raises(Problem):
        decode_cursor(encode_cursor({0: -1}))


def test_limits_outside_the_range_are_400(http, tokens):
    for params in ({"limit": 0}, {"limit": 5000}, {"wait": 99}):
        page = http.get("/v1/feed", params=params, headers=bearer(tokens["riec-nh"]))
        assert page.status_code == 400
        assert page.headers["content-type"] == "application/problem+json"


def test_a_recipient_without_a_feed_topic_gets_404(http, gateway):
    token, _ = gateway.tokens.issue("recipient", "politie-nh")
    page = http.get("/v1/feed", headers=bearer(token))
    assert page.status_code == 404 and page.json()["code"] == "no_feed"


def test_asking_for_the_next_page_acknowledges_the_previous_one(http, tokens, mem_broker):
    fill(mem_broker, "riec-nh", 4)
    first = http.get("/v1/feed", params={"limit": 3}, headers=bearer(tokens["riec-nh"])).json()
    assert mem_broker.committed == {}, "nothing is acknowledged before the client asks on"
    http.get("/v1/feed", params={"cursor": first["cursor"]}, headers=bearer(tokens["riec-nh"]))
    assert mem_broker.committed == {("feed.riec-nh", "recipient.riec-nh.gateway"): {0: 2, 1: 1}}
