"""Hostile input in every search field: no SQL error, nothing found that should not be, and
everything shown back escaped."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.web.conftest import csrf_of, run_verification

ATTACKS = [
    "' OR '1'='1",
    "x'; DROP TABLE audit_records; --",
    '" OR 1=1 --',
    "riec-nh' UNION SELECT body FROM audit_records --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "%' OR covenant_id LIKE '%",
    "\\x00\u202e",
]
FIELDS = ["partner", "recipient", "covenant", "rule", "type"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_search_fields_are_harmless(as_user, attack: str):
    client = as_user("schuren")
    for field in FIELDS:
        query = urlencode({field: attack})
        response = client.get(f"/exchanges?{query}")
        assert response.status_code == 200, field
        assert "<script>alert" not in response.text and "<img src=x" not in response.text
        assert client.get(f"/api/exchanges?{query}").json()["records"] == []
    assert client.get(f"/api/exchanges?{urlencode({'result': attack})}").status_code == 400
    assert client.get(f"/exchanges?{urlencode({'from': attack})}").status_code == 400
    assert client.get("/api/exchanges?" + urlencode({"cursor": attack})).status_code == 400


@pytest.mark.parametrize("attack", ATTACKS[:6])
def test_reports_recipients_records_and_subjects_are_harmless(as_user, attack: str):
    client = as_user("admin")
    query = urlencode({"covenant": attack})
    report = client.get(f"/report?{query}")
    assert report.status_code == 200
    assert "<script>alert" not in report.text and "<img src=x" not in report.text
    assert client.get(f"/api/report?{query}").json()["total"] == 0
    recipients = client.get(f"/recipients?{urlencode({'recipient': attack})}")
    assert recipients.status_code == 200 and "<script>alert" not in recipients.text
    assert client.get(f"/api/exchanges/{attack.replace('/', '')}").status_code in (404, 400)
    subject = client.post(
        "/subjects", data={"kind": attack, "identifier": attack, "csrf": csrf_of(client)}
    )
    assert subject.status_code == 400 and "<script>alert" not in subject.text
    assert run_verification(client)["ok"] is True  # nothing was dropped or changed


@pytest.mark.parametrize("digits", ["²", "١٢", "\U0001d7d7"])
def test_unicode_digits_in_cursors_and_record_ids_are_refused_not_500(as_user, digits: str):
    """``"²".isdigit()`` is true but ``int("²")`` raises: cursors and record ids take ASCII only."""
    client = as_user("schuren")
    assert client.get("/api/exchanges?" + urlencode({"cursor": digits})).status_code == 400
    assert client.get(f"/api/exchanges/{digits}").status_code == 404
    assert client.get(f"/exchanges/{digits}").status_code == 404
