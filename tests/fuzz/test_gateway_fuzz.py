"""The gateway's HTTP API under fuzzing (in-memory broker, the real app through TestClient).

Whatever a partner or recipient sends — random JSON, envelopes near the schema, huge, deep or
odd-unicode values, wrong content types, truncated bodies, forged cursors — the answer is
never a 5xx, every 4xx is an RFC 9457 problem with a code and a reason, never an identifier
from the request, good signals in a mixed batch still go through, and the app keeps serving.
Inputs that once broke it are replayed from ``corpus/gateway/`` (test_gateway_corpus.py).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from services.gateway.app import create_gateway_app
from services.gateway.context import Gateway, GatewaySettings
from services.gateway.problems import PROBLEM_JSON, TYPE_BASE
from services.gateway.routes_signals import JSON_TYPES
from services.gateway.testing import MemoryBroker
from tests.fuzz.strategies import (
    SIGN,
    demo_signals,
    dumps,
    fuzz_settings,
    json_values,
    mutated_envelopes,
    raw_inputs,
)
from tests.gateway.helpers import bearer, make_gateway, sqlite_engine

pytestmark = pytest.mark.timeout(120)

DEMO = [orjson.loads(value) for value in demo_signals()]
PARTNERS = sorted({str(s["source"]) for s in DEMO})
RECIPIENTS = ("riec-nh", "gemeente-alkmaar")
IDENTIFIER_FIELDS = ("ean", "address", "bag", "buyer_kvk", "buyer_name", "delivery_address")
IDENTIFIERS = sorted({str(s["data"][f]) for s in DEMO for f in IDENTIFIER_FIELDS if f in s["data"]})


@dataclass
class Served:
    """The gateway app on a memory broker, a token per demo partner and recipient."""

    http: TestClient
    gateway: Gateway
    broker: MemoryBroker
    tokens: dict[str, str]
    numbers: Iterator[int] = field(default_factory=itertools.count)

    def fresh(self, partner: str | None = None) -> dict[str, Any]:
        """A well-formed, signed demo signal of ``partner`` with an id never used before."""
        base = next(s for s in DEMO if partner is None or s["source"] == partner)
        unsigned = {k: v for k, v in base.items() if k != "signature"}
        unsigned["id"] = f"{base['source']}-fuzz-{next(self.numbers):07d}"
        signed: dict[str, Any] = SIGN(unsigned)
        return signed

    def post(self, partner: str, body: bytes, media: str = "application/json") -> httpx.Response:
        headers = {**bearer(self.tokens[partner]), "Content-Type": media}
        return self.http.post("/v1/signals", content=body, headers=headers)

    def still_serving(self) -> None:
        good = self.fresh("liander")
        answer = self.post("liander", orjson.dumps(good))
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == [good["id"]]


def build(
    settings: GatewaySettings, engine: Engine | None = None
) -> tuple[Gateway, MemoryBroker, dict[str, str]]:
    """A gateway on a memory broker with every demo partner's and recipient's topic, on
    ``engine`` (default: in-memory SQLite, one shared connection: for one caller at a time)."""
    broker = MemoryBroker()
    spec = {f"signals.{p}": 4 for p in PARTNERS}
    spec.update({f"feed.{r}": 2 for r in RECIPIENTS})
    broker.admin.ensure_topics(spec)
    gateway = make_gateway(engine or sqlite_engine(), broker, settings=settings)
    tokens = {p: gateway.tokens.issue("partner", p)[0] for p in PARTNERS}
    tokens.update({r: gateway.tokens.issue("recipient", r)[0] for r in RECIPIENTS})
    return gateway, broker, tokens


FUZZ_SETTINGS = GatewaySettings(rate=1e9, burst=10**9, feed_max_wait_s=0.0, stream_max_s=0.0)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    gateway, broker, tokens = build(FUZZ_SETTINGS)
    for recipient in RECIPIENTS:  # each feed holds messages naming its own recipient only
        for n in range(6):
            broker.append(
                f"feed.{recipient}", orjson.dumps({"for": recipient, "n": n}), partition=n % 2
            )
    with TestClient(create_gateway_app(gateway)) as http:
        yield Served(http, gateway, broker, tokens)


def check_problem(problem: Any, status: int | None = None) -> None:
    """An RFC 9457 problem with a stable type, a code and a reason."""
    assert isinstance(problem, dict), problem
    code, detail = problem.get("code"), problem.get("detail")
    assert isinstance(code, str) and code, problem
    assert isinstance(detail, str) and detail.strip(), problem
    assert problem.get("type") == TYPE_BASE + code
    assert isinstance(problem.get("title"), str) and problem["title"]
    assert isinstance(problem.get("status"), int) and 400 <= problem["status"] < 600
    if status is not None:
        assert problem["status"] == status
    for inner in problem.get("errors") or []:
        check_problem(inner)
        assert isinstance(inner.get("index"), int)


def check_answer(answer: httpx.Response) -> Any:
    """No 5xx, a problem for every 4xx, a well-formed 2xx, no identifier echoed."""
    assert answer.status_code < 500, answer.text
    for identifier in IDENTIFIERS:
        assert identifier not in answer.text, "an identifier of the request was echoed"
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == PROBLEM_JSON
        body = answer.json()
        check_problem(body, answer.status_code)
        return body
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        return answer.text
    body = answer.json()
    if answer.status_code == 202:
        assert all(isinstance(i, str) for i in body["accepted"])
        for problem in body["rejected"]:
            check_problem(problem)
            assert isinstance(problem.get("index"), int)
    return body


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"x": value}
    return value


@st.composite
def odd_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A demo envelope with one huge, deep or odd-unicode value somewhere."""
    envelope = draw(mutated_envelopes())
    odd = draw(
        st.one_of(
            st.integers(1, 1100).map(nested),
            st.integers(1, 300_000).map(lambda n: "x" * n),
            st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60),
            st.sampled_from(["\u0000", "\u202e", "\ufeff", "e\u0301", "\U0001f600" * 50, "²"]),
            st.integers(2**63, 2**64 - 1),
        )
    )
    where = draw(st.sampled_from(["id", "source", "type", "time", "data", "extension"]))
    if where == "data" and isinstance(envelope.get("data"), dict):
        envelope["data"][draw(st.sampled_from(["ean", "address", "score", "x"]))] = odd
    else:
        envelope[where] = odd
    return envelope


def bodies() -> st.SearchStrategy[bytes]:
    """Request bodies: the router fuzzers' raw inputs, batches, odd envelopes, raw JSON text
    no serialiser writes (huge numbers, lone surrogates, deep nesting) and truncations."""
    envelopes = st.one_of(mutated_envelopes(), odd_envelopes())
    good = st.sampled_from(demo_signals())
    return st.one_of(
        raw_inputs(),
        envelopes.map(dumps),
        st.lists(envelopes, min_size=1, max_size=6).map(dumps),
        st.sampled_from(
            [
                b"1" + b"0" * 400,
                b'{"id": 1e400}',
                b'["\\ud800"]',
                b'{"a": "\\udfff\\ud800"}',
                b"[" * 1100 + b"]" * 1100,
                b"\xef\xbb\xbf{}",
                b"{}" * 3,
                b"",
                b"null",
                b"[null]",
            ]
        ),
        st.tuples(good, st.integers(0, 2000)).map(lambda t: t[0][: t[1] % max(1, len(t[0]))]),
    )


@fuzz_settings(200)
@given(body=bodies(), partner=st.sampled_from(PARTNERS))
def test_any_body_is_answered_with_reasons_and_the_app_keeps_serving(
    served: Served, body: bytes, partner: str
) -> None:
    answer = served.post(partner, body)
    check_answer(answer)
    served.still_serving()


@st.composite
def mixed_batches(draw: st.DrawFn) -> tuple[list[Any], list[int]]:
    """Bad items (anything, envelopes near the schema, odd ones), and where the good signals
    go: the positions in the batch, a permutation of ``range(len(bad) + goods)``."""
    bad = draw(st.lists(st.one_of(json_values, mutated_envelopes(), odd_envelopes()), max_size=5))
    goods = draw(st.integers(1, 3))
    order = draw(st.permutations(range(len(bad) + goods)))
    return bad, order[:goods]


@fuzz_settings(150)
@given(mixed=mixed_batches())
def test_good_signals_in_a_mixed_batch_are_accepted_once(
    served: Served, mixed: tuple[list[Any], list[int]]
) -> None:
    bad, good_places = mixed
    fresh = [served.fresh("liander") for _ in good_places]
    rest = iter(bad)
    by_place = dict(zip(good_places, fresh, strict=True))
    batch = [by_place.get(i) or next(rest) for i in range(len(bad) + len(fresh))]
    body = check_answer(served.post("liander", dumps(batch)))
    assert {s["id"] for s in fresh} <= set(body["accepted"])
    rejected = [p["index"] for p in body["rejected"]]
    assert len(rejected) == len(set(rejected)) and not set(good_places) & set(rejected)
    assert all(0 <= i < len(batch) for i in rejected)
    for i, item in enumerate(batch):
        if not isinstance(item, dict):
            assert i in rejected
    keys = [key.decode() for key, _ in served.broker.records("signals.liander")]
    for signal in fresh:
        assert keys.count(signal["id"]) == 1


printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@fuzz_settings(100)
@given(media=st.one_of(st.text(printable, max_size=40), st.sampled_from(["text/json", "json"])))
def test_only_json_media_types_are_read(served: Served, media: str) -> None:
    body = orjson.dumps(served.fresh("liander"))
    answer = served.post("liander", body, media)
    if media.split(";", maxsplit=1)[0].strip().lower() in JSON_TYPES:
        assert check_answer(answer)["accepted"]
    else:
        assert check_answer(answer)["code"] == "unsupported_media_type"
        assert answer.status_code == 415


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# a cursor of this gateway's layout with forged partitions and offsets (and a topic it ignores)
odd_numbers = ["²", "٣", "-1", "+1", " 1", "1_0", "0x1", str(2**31), str(2**63)]
partition_names = st.one_of(
    st.sampled_from(["0", "1", *odd_numbers]),
    st.sampled_from(odd_numbers),
    st.integers(0, 2**40).map(str),
    st.text(max_size=4),
)
offsets = st.one_of(st.integers(0, 2**64 - 1), st.integers(-5, -1), json_values)
near_cursors = st.dictionaries(partition_names, offsets, max_size=3).map(
    lambda o: b64(dumps({"v": 1, "o": o, "topic": "feed.gemeente-alkmaar"}))
)
cursors = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.binary(max_size=60).map(b64),
    json_values.map(lambda v: b64(dumps(v))),
    near_cursors,
)
queries = st.one_of(st.none(), st.text(printable, max_size=8), st.integers(-3, 2000).map(str))


@fuzz_settings(200)
@given(
    cursor=st.one_of(near_cursors, cursors),
    limit=queries,
    wait=st.one_of(queries, st.sampled_from(["nan", "inf", "-0", "1e3", "0.0001"])),
    last_event_id=st.one_of(st.none(), st.text(printable, max_size=60)),
    events=st.booleans(),
)
def test_feed_reads_answer_with_reasons_and_only_the_callers_feed(
    served: Served,
    cursor: str | None,
    limit: str | None,
    wait: str | None,
    last_event_id: str | None,
    events: bool,
) -> None:
    params = {
        k: v for k, v in {"cursor": cursor, "limit": limit, "wait": wait}.items() if v is not None
    }
    headers = bearer(served.tokens["riec-nh"])
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    path = "/v1/feed/events" if events else "/v1/feed"
    answer = served.http.get(path, params=params, headers=headers)
    body = check_answer(answer)
    assert answer.status_code in (200, 400), answer.text
    assert "gemeente-alkmaar" not in answer.text
    if answer.status_code == 200 and not events:
        assert all(m["for"] == "riec-nh" for m in body["messages"])
    assert {topic for topic, _ in served.broker.committed} <= {"feed.riec-nh"}
    served.still_serving()


@fuzz_settings(200)
@given(cursor=near_cursors, events=st.booleans())
def test_forged_cursors_are_refused_or_move_through_ones_own_feed(
    served: Served, cursor: str, events: bool
) -> None:
    headers = bearer(served.tokens["riec-nh"])
    if events:
        answer = served.http.get("/v1/feed/events", headers={**headers, "Last-Event-ID": cursor})
    else:
        answer = served.http.get("/v1/feed", params={"cursor": cursor}, headers=headers)
    body = check_answer(answer)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert body["code"] == "invalid_cursor"
    assert "gemeente-alkmaar" not in answer.text
