"""The report and record pages say when a covenant is an illustration, not a signed text."""

from __future__ import annotations

from tests.web.conftest import Hub

NOTE = "illustration, not the text of a signed covenant"


def _words(html: str) -> str:
    return " ".join(html.split()).lower()


def test_the_report_page_marks_an_illustrated_covenant(as_user):
    page = as_user("admin").get("/report?covenant=drugslocaties-nh")
    assert page.status_code == 200, page.text
    assert NOTE in _words(page.text)
    assert "Gemeenteblad 2025, 213236" in " ".join(page.text.split())


def test_the_record_page_marks_the_covenant_it_cites(as_user, hub: Hub):
    seq = next(
        n
        for n, r in enumerate(hub.records, 1)
        if (r["covenant"] or {}).get("id") == "nh-drugsalert"
    )
    page = as_user("admin").get(f"/exchanges/{seq}")
    assert page.status_code == 200, page.text
    assert NOTE in _words(page.text)
    assert "NH Drugsalert sub-project" in " ".join(page.text.split())


def test_a_record_without_a_covenant_has_no_note(as_user, hub: Hub):
    seq = next((n for n, r in enumerate(hub.records, 1) if not r["covenant"]), None)
    if seq is None:  # every record of this hub cites a covenant
        return
    assert NOTE not in _words(as_user("admin").get(f"/exchanges/{seq}").text)
