"""The coverage page and its JSON: signed in, access-logged, suppressed numbers only."""

from __future__ import annotations

from services.core.coverage.facts import Fact
from services.coverage.store import SqlCoverageStore
from services.web.access_log import AccessLog
from tests.web.conftest import make_app


def test_the_page_needs_a_sign_in(web_hub):
    client = make_app(web_hub)
    assert client.get("/coverage").status_code == 303
    assert client.get("/api/coverage").status_code == 401


def test_the_page_shows_ranking_charts_trend_and_tile_grid(web_hub, signed_in):
    page = signed_in("manager").get("/coverage?month=2026-10")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Report gap" in html
    assert "Indicators per municipality" in html and "Reports per municipality" in html
    assert "Trend: published reports and indicators per month" in html
    assert "not a geographic map" in html
    assert html.count("<polyline") == 2
    assert "Noord-Holland-Noord" in html and "Kennemerland" in html
    assert "<script" not in html


def test_every_role_sees_the_same_suppressed_numbers(web_hub, signed_in):
    shown = {
        name: signed_in(name).get("/api/coverage?month=2026-10").json()
        for name in ("admin", "manager", "liander", "nobody")
    }
    assert len({str(v) for v in shown.values()}) == 1
    released = shown["admin"]
    true = SqlCoverageStore(web_hub.engine).counts(["2026-10"])
    rows = [r for r in released["rows"] if r["month"] == "2026-10"]
    assert rows and any(r["indicators"] for r in rows)
    for row in rows:
        for category in ("reports", "indicators"):
            count = true[(row["municipality"], "2026-10", category)]
            assert row[category] == (count if count >= 5 else None)
    assert released["threshold"] == 5


def test_the_threshold_cannot_be_lowered_from_the_web(signed_in):
    client = signed_in("admin")
    assert client.get("/api/coverage?month=2026-10&threshold=1").json()["threshold"] == 5


def test_views_are_access_logged_and_bad_months_refused(web_hub, signed_in):
    client = signed_in("manager")
    assert client.get("/coverage?month=2026-09").status_code == 200
    bad = client.get("/coverage?month=September")
    assert bad.status_code == 400 and "YYYY-MM" in bad.text
    assert client.get("/api/coverage?month=2026-13").status_code == 400
    logged = [e for e in AccessLog(web_hub.engine).entries(user="manager") if e.route == "coverage"]
    assert logged and logged[0].detail == {"month": "2026-09"}


def test_unasked_the_page_shows_the_newest_month_with_published_counts(web_hub, signed_in):
    """A month just begun has every count below 5: the page shows the last one that says
    something, and says which month it shows and why."""
    store = SqlCoverageStore(web_hub.engine)
    newest = store.months()[-1]
    following = f"{int(newest[:4]) + int(newest[5:]) // 12}-{int(newest[5:]) % 12 + 1:02d}"
    store.add([Fact("p", "just-begun", following, "GM0361", "energy.x.v1", "indicators")])
    client = signed_in("manager")
    shown = client.get("/api/coverage").json()
    assert shown["month"] == newest
    assert shown["month_chosen"] == (
        f"the newest month with published counts; {following} has every count below 5 so far"
    )
    page = client.get("/coverage").text
    assert f"Showing <strong>{newest}</strong>: the newest month with published counts" in page
