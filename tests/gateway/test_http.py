"""The main paths over real HTTP: uvicorn on 127.0.0.1, the in-memory broker behind it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from services.gateway.app import create_gateway_app
from services.gateway.context import Gateway
from services.gateway.routes_feed import HEARTBEAT_S
from tests.gateway.helpers import bearer, serving, signal

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def base_url(gateway: Gateway) -> Iterator[str]:
    with serving(create_gateway_app(gateway)) as url:
        yield url


def test_publish_resend_and_read_over_http(base_url, tokens, mem_broker):
    with httpx.Client(base_url=base_url, timeout=10) as http:
        batch = [signal(1), signal(2, score="bad"), signal(3)]
        first = http.post("/v1/signals", json=batch, headers=bearer(tokens["liander"]))
        again = http.post("/v1/signals", json=batch, headers=bearer(tokens["liander"]))
        assert first.status_code == again.status_code == 202
        assert first.json() == again.json()
        assert first.json()["accepted"] == ["liander-000001", "liander-000003"]
        assert len(mem_broker.records("signals.liander")) == 2
        assert http.post("/v1/signals", json=batch).status_code == 401

        mem_broker.append("feed.riec-nh", b'{"exchange_id": "e1"}', partition=1)
        page = http.get("/v1/feed", headers=bearer(tokens["riec-nh"]))
        assert page.json()["messages"] == [{"exchange_id": "e1"}]
        served = http.get("/v1/openapi.json")
        assert served.json()["info"]["title"] == "Schakel gateway"


def test_server_sent_events_resume_from_the_last_event_id(base_url, tokens, mem_broker):
    for n in range(3):
        mem_broker.append("feed.riec-nh", orjson.dumps({"exchange_id": f"e{n}"}), partition=n % 2)
    events = read_events(base_url, tokens["riec-nh"], count=3)
    assert sorted(data["exchange_id"] for _, data in events) == ["e0", "e1", "e2"]
    last_id = events[-1][0]
    threading.Timer(0.3, mem_broker.append, args=("feed.riec-nh", b'{"exchange_id": "e3"}')).start()
    resumed = read_events(base_url, tokens["riec-nh"], count=1, last_event_id=last_id)
    assert [data["exchange_id"] for _, data in resumed] == ["e3"]


def test_server_sent_events_need_a_recipient_token(base_url, tokens):
    with httpx.Client(base_url=base_url, timeout=10) as http:
        assert http.get("/v1/feed/events").status_code == 401
        assert http.get("/v1/feed/events", headers=bearer(tokens["liander"])).status_code == 403


def read_events(
    base_url: str, token: str, *, count: int, last_event_id: str | None = None
) -> list[tuple[str, dict[str, object]]]:
    headers = bearer(token) | ({"Last-Event-ID": last_event_id} if last_event_id else {})
    events: list[tuple[str, dict[str, object]]] = []
    with (
        httpx.Client(base_url=base_url, timeout=10) as http,
        http.stream("GET", "/v1/feed/events", headers=headers) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event_id = ""
        for line in stream.iter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                events.append((event_id, orjson.loads(line[6:])))
                if len(events) == count:
                    break
    return events


def test_a_stopping_server_ends_open_event_streams_itself(base_url, tokens, gateway, mem_broker):
    """Asked to stop, the gateway ends each stream at once (not after the heartbeat wait) and
    commits what it sent: nothing is left for the server to cut."""
    for n in range(3):
        mem_broker.append("feed.riec-nh", orjson.dumps({"exchange_id": f"e{n}"}))
    lines: list[str] = []
    ended = threading.Event()

    def follow() -> None:
        with (
            httpx.Client(base_url=base_url, timeout=30) as http,
            http.stream("GET", "/v1/feed/events", headers=bearer(tokens["riec-nh"])) as stream,
        ):
            for line in stream.iter_lines():
                lines.append(line)
        ended.set()

    reader = threading.Thread(target=follow)
    reader.start()
    deadline = time.monotonic() + 20
    while sum(line.startswith("data: ") for line in lines) < 3:
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    time.sleep(0.3)  # the stream now waits for more (up to HEARTBEAT_S)
    asked = time.monotonic()
    gateway.closing.close()
    assert ended.wait(5), "the stream should end when the server stops"
    assert time.monotonic() - asked < HEARTBEAT_S / 3
    reader.join(5)
    assert mem_broker.committed == {("feed.riec-nh", "recipient.riec-nh.gateway"): {0: 3}}
