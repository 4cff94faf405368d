"""What the pages say, beyond the numbers: the app's own "not found" page for an unknown
URL (JSON under ``/api/``), "not in your scope" for a report on someone else's covenant, and
the barrier model's covenant rules listed one per line under their covenant."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from services.web.access_log import AccessLog
from services.web.formats import breakable, when
from tests.web.conftest import Hub, make_app

DRUGS = "drugslocaties-nh"
SCHUREN = "schimmige-schuren"


def test_an_unknown_page_is_the_apps_not_found_page_with_its_menu(as_user):
    client = as_user("admin")
    for method in ("GET", "POST"):
        page = client.request(method, "/no/such/page")
        assert page.status_code == 404, method
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in page.text and "There is no page here" in page.text
        assert 'href="/exchanges"' in page.text and "Sign out" in page.text  # the menu
        assert '"detail"' not in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")


def test_an_unknown_page_signed_out_offers_the_sign_in(hub: Hub):
    page = make_app(hub).get("/exchanges-old")
    assert page.status_code == 404
    assert "<h1>Not found</h1>" in page.text and 'href="/sign-in"' in page.text
    assert "Sign out" not in page.text


def test_an_unknown_api_path_answers_json(hub: Hub, as_user):
    for client in (make_app(hub), as_user("admin")):
        answer = client.get("/api/no-such-thing")
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"error": "no such API path"}
    # a known API path with an unknown record keeps its own answer
    assert as_user("admin").get("/api/exchanges/999999").json() == {"error": "no such record"}


def test_a_missing_static_file_is_not_found_too(hub: Hub):
    missing = make_app(hub).get("/static/nothing.css")
    assert missing.status_code == 404 and "<h1>Not found</h1>" in missing.text


def test_a_report_on_a_covenant_outside_the_scope_says_so(as_user, hub: Hub):
    client = as_user("schuren")
    page = client.get(f"/report?covenant={DRUGS}")
    assert page.status_code == 404
    assert "Not in your scope" in page.text
    assert f"{DRUGS} is not in your scope. Your covenants: {SCHUREN}." in page.text
    assert "decisions" not in page.text and "Download CSV" not in page.text
    assert f'value="{DRUGS}"' in page.text  # the form keeps what was asked
    csv = client.get(f"/report.csv?covenant={DRUGS}")
    assert csv.status_code == 404 and "not in your scope" in csv.text
    answer = client.get(f"/api/report?covenant={DRUGS}")
    assert answer.status_code == 404 and "not in your scope" in answer.json()["error"]
    logged = [e for e in AccessLog(hub.engine).entries(user="schuren") if e.route == "report"]
    assert logged[0].detail == {"covenant": DRUGS, "out_of_scope": True}

    own = client.get(f"/report?covenant={SCHUREN}")
    assert own.status_code == 200 and "not in your scope" not in own.text
    total = sum(1 for r in hub.records if (r["covenant"] or {}).get("id") == SCHUREN)
    assert f"{SCHUREN}: {total} decisions" in own.text


def test_a_partner_officer_is_told_when_no_decision_of_a_covenant_involves_them(as_user, hub):
    involving = {
        (r["covenant"] or {}).get("id")
        for r in hub.records
        if "liander" in (r["origin"], r["recipient"])
    }
    every = {(r["covenant"] or {}).get("id") for r in hub.records} - {None}
    outside = sorted(every - involving)
    inside = sorted(involving - {None})
    assert outside and inside
    client = as_user("liander")
    page = client.get(f"/report?covenant={outside[0]}")
    assert page.status_code == 404
    assert "no decision under it involves your partners (liander)" in page.text
    assert client.get(f"/report?covenant={inside[0]}").status_code == 200


def test_a_covenant_without_decisions_is_no_decisions_not_zero_charts(as_user, hub: Hub):
    page = as_user("admin").get("/report?covenant=no-such-covenant")
    assert page.status_code == 200
    assert "no-such-covenant: no decisions" in page.text
    assert "not in your scope" not in page.text and "<svg" not in page.text
    known = sorted({(r["covenant"] or {}).get("id") for r in hub.records} - {None})
    assert f"Covenants with decisions: {', '.join(known)}." in page.text


def test_the_barrier_page_lists_each_rule_once_under_its_covenant(as_user):
    client: TestClient = as_user("admin")
    rows = {r["step"]: r for r in client.get("/api/barriers?model=cannabis").json()}
    page = client.get("/barriers?model=cannabis").text
    step = max(rows.values(), key=lambda r: len(r["rules"]))
    assert len({rule.split("/")[0] for rule in step["rules"]}) > 1  # several covenants
    html = page.split(f"<code>{breakable(step['step'])}</code>", 1)[1].split("</tr>", 1)[0]
    covenants = re.findall(r'<p class="covenant">(.*?)</p>', html)
    names = re.findall(r'<ul class="cell-list rules">(.*?)</ul>', html, re.S)
    shown = [
        f"{covenant}/{name}"
        for covenant, items in zip(covenants, names, strict=True)
        for name in re.findall(r"<li>(.*?)</li>", items)
    ]
    assert [c.replace("<wbr>", "") for c in shown] == step["rules"]
    assert len(covenants) == len(set(covenants))  # each covenant named once
    assert ", ".join(step["rules"]) not in page  # no comma-joined wall


def test_moments_are_one_line_time_elements_and_names_break_only_at_separators():
    moment = datetime(2026, 10, 30, 3, 54, 45, 123456, tzinfo=UTC)
    assert str(when(moment)) == (
        '<time datetime="2026-10-30T03:54:45.123456+00:00">2026-10-30 03:54:45</time>'
    )
    assert str(when(moment.replace(tzinfo=None))) == str(when(moment))  # naive is UTC
    assert str(when(None)) == "—"
    assert str(breakable("energy.consumption_anomaly.v1")) == "energy.consumption_<wbr>anomaly.v1"
    assert str(breakable("a@1/<b>")) == "a@<wbr>1/<wbr>&lt;b&gt;"
