"""Property: the workplace's JSON API never returns a record outside a scoped officer's scope.

For random search filters (real values of the store, random text, dates, cursors), each scoped
privacy officer's answer from ``/api/exchanges``, ``/api/recipients`` and
``/api/exchanges/{reference}`` holds only records of their covenant (or involving their
partner), each matching the filters; and when the officer's answer is one whole page, it is
exactly the admin's answer to the same query cut down to that scope — nothing missing either.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from services.web.forms import RESULTS
from tests.fuzz.strategies import fuzz_settings
from tests.web.conftest import Hub, make_app, sign_in

pytestmark = pytest.mark.timeout(300)

SCHUREN = "schimmige-schuren"
SCOPES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "schuren": lambda r: (r["covenant"] or {}).get("id") == SCHUREN,
    "liander": lambda r: "liander" in (r["origin"], r["recipient"]),
    "nobody": lambda r: False,
}
"""The scoped officers of conftest's USERS, and which records each may see."""

FILTERED = {  # query parameter -> the record's value it is compared with
    "partner": lambda r: r["origin"],
    "recipient": lambda r: r["recipient"],
    "covenant": lambda r: (r["covenant"] or {}).get("id"),
    "rule": lambda r: (r["covenant"] or {}).get("rule"),
    "result": lambda r: r["result"],
    "type": lambda r: r["object"],
}
MAX_PAGES = 15


def _values(hub: Hub, pick: Callable[[dict[str, Any]], Any]) -> list[str]:
    return sorted({v for r in hub.records if isinstance(v := pick(r), str) and v})


def filters(hub: Hub) -> st.SearchStrategy[dict[str, str]]:
    """Query strings of the exchange search: mostly real values, some random or malformed."""

    def one(real: list[str]) -> st.SearchStrategy[str]:
        return st.one_of(st.sampled_from(real), st.sampled_from(real), st.text(max_size=12))

    days = st.dates().map(lambda d: d.isoformat())
    near = st.integers(0, 150).map(lambda n: f"2026-{8 + n // 31:02d}-{1 + n % 28:02d}")
    return st.fixed_dictionaries(
        {},
        optional={
            "partner": one(["liander", *_values(hub, FILTERED["partner"])]),
            "recipient": one(_values(hub, FILTERED["recipient"])),
            "covenant": one([SCHUREN, *_values(hub, FILTERED["covenant"])]),
            "rule": one(_values(hub, FILTERED["rule"])),
            "result": st.one_of(st.sampled_from(RESULTS), st.text(max_size=8)),
            "type": one(_values(hub, FILTERED["type"])),
            "from": st.one_of(near, days, st.text(max_size=10)),
            "to": st.one_of(near, days),
            "cursor": st.one_of(st.integers(0, len(hub.records) + 5).map(str), st.just("x")),
        },
    )


def _signed_in(hub: Hub, name: str) -> TestClient:
    client = make_app(hub)
    assert sign_in(client, name).status_code == 303
    return client


def _all_pages(client: TestClient, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every record the query returns, following next_cursor (bounded)."""
    records: list[dict[str, Any]] = []
    query = dict(params)
    for _ in range(MAX_PAGES):
        body = client.get("/api/exchanges", params=query).json()
        records += body["records"]
        if body["next_cursor"] is None:
            return records
        query["cursor"] = str(body["next_cursor"])
    pytest.skip("more pages than the property follows")  # never with ~600 records


def test_search_never_leaves_an_officers_scope_and_misses_nothing(hub: Hub):
    admin = _signed_in(hub, "admin")
    officers = {name: _signed_in(hub, name) for name in SCOPES}
    seen: Counter[str] = Counter()

    @fuzz_settings(60)
    @given(params=filters(hub))
    def search(params: dict[str, str]) -> None:
        reference = admin.get("/api/exchanges", params=params)
        for name, client in officers.items():
            answer = client.get("/api/exchanges", params=params)
            assert answer.status_code == reference.status_code, answer.text
            if answer.status_code != 200:
                continue
            body = answer.json()
            for record in body["records"]:
                assert SCOPES[name](record), f"{name} got record {record['seq']} outside scope"
                for param, pick in FILTERED.items():
                    if params.get(param, "").strip():
                        assert pick(record) == params[param].strip()
            seen[name] += bool(body["records"])
            if body["next_cursor"] is None:
                expected = [r["seq"] for r in _all_pages(admin, params) if SCOPES[name](r)]
                assert [r["seq"] for r in body["records"]] == expected

    search()
    assert seen["schuren"] and seen["liander"], "the property never saw a record: vacuous"
    assert not seen["nobody"]


def test_recipient_view_and_record_look_up_stay_in_scope(hub: Hub):
    officers = {name: _signed_in(hub, name) for name in SCOPES}
    recipients = _values(hub, FILTERED["recipient"])
    record_ids = [str(r["record_id"]) for r in hub.records]
    seen: Counter[str] = Counter()

    @fuzz_settings(60)
    @given(
        recipient=st.one_of(st.sampled_from(recipients), st.text(max_size=12)),
        cursor=st.one_of(st.none(), st.integers(0, len(hub.records) + 5).map(str)),
        reference=st.one_of(
            st.integers(0, len(hub.records) + 5).map(str),
            st.sampled_from(record_ids),
            st.text(string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=20),
        ),
    )
    def look(recipient: str, cursor: str | None, reference: str) -> None:
        params = {"recipient": recipient, **({"cursor": cursor} if cursor else {})}
        for name, client in officers.items():
            view = client.get("/api/recipients", params=params)
            assert view.status_code in (200, 400), view.text
            if view.status_code == 200:
                records = view.json()["records"]
                assert all(SCOPES[name](r) for r in records), name
                assert all(r["recipient"] == recipient.strip() for r in records)
                seen[name] += bool(records)
            found = client.get(f"/api/exchanges/{reference}")
            assert found.status_code in (200, 404), found.text
            if found.status_code == 200:
                assert SCOPES[name](found.json()), f"{name} looked up a record outside scope"

    look()
    assert seen["schuren"] and seen["liander"], "the property never saw a record: vacuous"
