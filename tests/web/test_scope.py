"""Scoped privacy officers see only their covenants' or partners' records, everywhere."""

from __future__ import annotations

from tests.web.conftest import Hub, csrf_of, planted_address

SCHUREN = "schimmige-schuren"


def _seq_of(hub: Hub, covenant: str) -> int:
    """The seq of some record of ``covenant`` (records are stored in order from seq 1)."""
    for seq, record in enumerate(hub.records, 1):
        if (record["covenant"] or {}).get("id") == covenant:
            return seq
    raise AssertionError(covenant)


def test_search_shows_a_covenant_officer_only_their_covenant(as_user, hub: Hub):
    client = as_user("schuren")
    seen: list[dict] = []
    cursor = None
    while True:
        url = "/api/exchanges" + (f"?cursor={cursor}" if cursor else "")
        body = client.get(url).json()
        seen += body["records"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = sum(1 for r in hub.records if (r["covenant"] or {}).get("id") == SCHUREN)
    assert len(seen) == expected > 0
    assert {r["covenant"]["id"] for r in seen} == {SCHUREN}
    asked = client.get("/api/exchanges?covenant=drugslocaties-nh").json()
    assert asked["records"] == []


def test_search_pages_hold_only_the_officers_covenant(as_user):
    page = as_user("schuren").get("/exchanges").text
    assert SCHUREN in page
    assert "drugslocaties-nh" not in page
    assert "nh-drugsalert" not in page


def test_another_covenants_record_is_not_found_in_page_or_json(as_user, hub: Hub):
    client = as_user("schuren")
    other = _seq_of(hub, "drugslocaties-nh")
    own = _seq_of(hub, SCHUREN)
    assert client.get(f"/exchanges/{other}").status_code == 404
    assert client.get(f"/api/exchanges/{other}").status_code == 404
    record_id = hub.records[other - 1]["record_id"]
    assert client.get(f"/api/exchanges/{record_id}").status_code == 404
    assert client.get(f"/exchanges/{own}").status_code == 200
    assert client.get(f"/api/exchanges/{own}").json()["covenant"]["id"] == SCHUREN
    assert as_user("admin").get(f"/api/exchanges/{other}").status_code == 200


def test_a_partner_officer_sees_records_from_or_to_that_partner(as_user, hub: Hub):
    records = as_user("liander").get("/api/exchanges?result=delivered").json()["records"]
    assert records
    assert all("liander" in (r["origin"], r["recipient"]) for r in records)


def test_an_officer_without_scope_sees_nothing(as_user):
    client = as_user("nobody")
    assert client.get("/api/exchanges").json()["records"] == []
    report = client.get("/api/report?covenant=drugslocaties-nh")
    assert report.status_code == 404
    assert report.json() == {
        "error": "drugslocaties-nh is not in your scope. "
        "Your covenants: none yet (ask an admin for a scope)."
    }


def test_reports_and_recipient_views_are_scoped(as_user, hub: Hub):
    client = as_user("schuren")
    other = client.get("/api/report?covenant=drugslocaties-nh")
    assert other.status_code == 404 and "total" not in other.json()
    own = client.get(f"/api/report?covenant={SCHUREN}").json()
    assert own["total"] == sum(1 for r in hub.records if (r["covenant"] or {}).get("id") == SCHUREN)
    view = client.get("/api/recipients?recipient=riec-nh").json()["records"]
    assert view
    assert {r["covenant"]["id"] for r in view} == {SCHUREN}


def test_subject_look_up_is_scoped(as_user, hub: Hub):
    typed, _ = planted_address(hub)
    everything = as_user("admin")
    body = {"kind": "address", "identifier": typed}
    headers = {"x-csrf-token": csrf_of(everything)}
    all_found = everything.post("/api/subjects", json=body, headers=headers).json()["records"]
    assert SCHUREN in {r["covenant"] for r in all_found}
    assert len({r["covenant"] for r in all_found}) > 1
    client = as_user("schuren")
    headers = {"x-csrf-token": csrf_of(client)}
    found = client.post("/api/subjects", json=body, headers=headers).json()["records"]
    assert found
    assert {r["covenant"] for r in found} == {SCHUREN}
