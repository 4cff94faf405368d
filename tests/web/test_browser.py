"""The privacy officer's workplace in a real headless Chromium, against the real app served
by uvicorn on an audit store filled by the real pipeline.

One browser and one server per module; each test signs its users in in contexts of their own
(separate cookie jars). Screenshots of every step go to ``out/test-artefacts/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from playwright.sync_api import Error as PlaywrightError

from services.audit.store import SqlAuditStore
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.reid.workflow import Reidentification
from services.web.app import create_web_app
from services.web.context import WebSettings
from services.web.forms import RESULTS
from tests.reid.helpers import canonical, delivered
from tests.web.browser import chromium, live_server, screenshot_path
from tests.web.conftest import KDF_COST, PASSWORD, SECRET, USERS, Hub, build_hub, planted_address

pytestmark = pytest.mark.browser

DRUGS = "drugslocaties-nh"
SCHUREN = "schimmige-schuren"
RECIPIENT = "riec-nh"
BROWSER_USERS = {
    **USERS,
    "riec-officer": ("privacy-officer", [], [RECIPIENT]),
    "drugs-officer": ("privacy-officer", [DRUGS], []),
}
WAIT_MS = 15_000


@dataclass
class Site:
    url: str
    hub: Hub


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    hub = build_hub(tmp_path_factory.mktemp("browser") / "audit.db", BROWSER_USERS)
    reid = Reidentification(
        hub.engine, SqlAuditStore(hub.engine), Pseudonymiser(hub.keys), hub.covenants
    )
    app = create_web_app(hub.engine, hub.keys, WebSettings(secret=SECRET, kdf_cost=KDF_COST), reid)
    try:
        with live_server(app) as url:
            yield Site(url, hub)
        assert app.state.context.integrity.join(60)
    finally:
        hub.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


SignIn = Callable[[str], Page]


@pytest.fixture
def sign_in_as(site: Site, browser: Browser) -> Iterator[SignIn]:
    """Signs a user in through the form in a fresh browser context; returns its page."""
    contexts: list[BrowserContext] = []

    def signed_in(name: str) -> Page:
        context = browser.new_context(base_url=site.url)
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto("/sign-in")
        page.get_by_label("Name").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        return page

    yield signed_in
    for context in contexts:
        context.close()


def snap(page: Page, name: str) -> Path:
    path = screenshot_path(name)
    page.screenshot(path=str(path), full_page=True)
    return path


def column(page: Page, index: int) -> list[str]:
    """The texts of one column of the records table (1-based)."""
    return page.locator(f"table tbody tr td:nth-child({index})").all_inner_texts()


def test_sign_in_search_and_open_a_record(site: Site, sign_in_as: SignIn):
    page = sign_in_as("admin")
    expect(page).to_have_url(re.compile(r"/exchanges$"))
    assert snap(page, "01-signed-in-exchanges").stat().st_size > 0

    options = page.locator("select[name=result] option").all_inner_texts()
    assert options == ["any", *RESULTS]
    assert {"requested", "approved", "revealed", "purged"} <= set(options)

    page.get_by_label("Covenant").fill(DRUGS)
    page.get_by_label("Result").select_option("withheld")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"result=withheld"))
    expected = [
        r
        for r in site.hub.records
        if r["result"] == "withheld" and (r["covenant"] or {}).get("id") == DRUGS
    ]
    results, covenants = column(page, 3), column(page, 7)
    assert len(results) == min(len(expected), 50) > 0
    assert set(results) == {"withheld"}
    assert all(c.startswith(DRUGS) for c in covenants)
    snap(page, "02-search-withheld")

    seq = page.locator("table tbody tr td:first-child a").first.inner_text()
    page.locator("table tbody tr td:first-child a").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Record {seq}")
    expect(page.get_by_text(f"seq {seq}, follows seq")).to_be_visible()
    record = site.hub.records[int(seq) - 1]
    assert record["result"] == "withheld" and record["covenant"]["id"] == DRUGS
    assert record["record_id"] in page.content()
    snap(page, "03-record-detail")


def test_subject_look_up(site: Site, sign_in_as: SignIn):
    typed, normalised = planted_address(site.hub)
    pseudonyms = set(Pseudonymiser(site.hub.keys).all_pseudonyms(INTERNAL, "address", normalised))
    expected = [r for r in site.hub.records if pseudonyms & set(r["subjects"].values())]
    page = sign_in_as("admin")
    page.get_by_role("link", name="Subject look-up").click()
    page.get_by_label("Kind").select_option("address")
    page.get_by_label("Identifier").fill(typed)
    page.get_by_role("button", name="Look up").click()
    heading = f"{len(expected)} records about this address, oldest first"
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    assert len(page.locator("table tbody tr").all()) == len(expected) > 1
    assert typed not in page.content() and normalised not in page.content()
    assert typed not in page.url
    snap(page, "04-subject-look-up")


def test_four_eyes_re_identification(site: Site, sign_in_as: SignIn):
    record = delivered(site.hub.records, RECIPIENT, DRUGS, "ean", reidentify=True)
    signal = next(s for s in site.hub.signals if s["id"] == record["signal_id"])
    value = canonical(signal, "ean", "ean")
    requester, approver = sign_in_as("riec-officer"), sign_in_as("drugs-officer")

    requester.get_by_role("link", name="Re-identification").click()
    requester.get_by_label("Recipient").fill(RECIPIENT)
    requester.get_by_label("Covenant").fill(DRUGS)
    requester.get_by_label("Pseudonym").fill(record["pseudonyms"]["ean"])
    requester.get_by_label("Purpose").fill("verify a tampered meter before a site visit")
    requester.get_by_label("Case reference").fill("RIEC-2026-0042")
    requester.get_by_role("button", name="File request").click()
    expect(requester.locator("table tbody tr")).to_have_count(1)
    expect(requester.get_by_role("button", name="Approve")).to_have_count(0)  # not their own
    snap(requester, "05-reid-requested")

    approver.goto("/reid")
    approver.get_by_role("button", name="Approve").click()
    expect(approver.get_by_role("button", name="Approve")).to_have_count(0)
    snap(approver, "06-reid-approved")

    requester.reload()
    requester.get_by_role("button", name="Reveal once").click()
    expect(requester.locator("output.revealed")).to_have_text(value)
    snap(requester, "07-reid-revealed-once")
    requester.get_by_role("link", name="Back to the requests").click()
    expect(requester.get_by_role("button", name="Reveal once")).to_have_count(0)
    assert value not in requester.content()
    # the reveal answered a POST with no-store: going back cannot show it again from a cache
    with pytest.raises(PlaywrightError, match="ERR_CACHE_MISS"):
        requester.go_back()
    # the failed navigation still swaps in Chromium's error page: read it once it has settled
    requester.wait_for_load_state()
    expect(requester.locator("html")).not_to_contain_text(value)

    # each step is an audit record the search finds under its own result
    for step in ("requested", "approved", "revealed"):
        requester.goto("/exchanges")
        requester.get_by_label("Result").select_option(step)
        requester.get_by_role("button", name="Search").click()
        expect(requester.locator("table tbody tr")).to_have_count(1)
        assert column(requester, 3) == [step] and column(requester, 5) == [RECIPIENT]
    snap(requester, "08-reid-revealed-in-search")


def test_a_covenant_scoped_officer_sees_only_their_covenant(site: Site, sign_in_as: SignIn):
    other = next(
        seq for seq, r in enumerate(site.hub.records, 1) if (r["covenant"] or {}).get("id") == DRUGS
    )
    page = sign_in_as("schuren")
    covenants = column(page, 7)
    assert covenants and all(c.startswith(SCHUREN) for c in covenants)

    page.get_by_label("Covenant").fill(DRUGS)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No records.")).to_be_visible()
    snap(page, "09-scoped-search-other-covenant")

    page.goto(f"/exchanges/{other}")
    assert page.locator("h1").inner_text() != f"Record {other}"
    assert site.hub.records[other - 1]["record_id"] not in page.content()
    snap(page, "10-scoped-record-of-other-covenant")

    api = page.request  # the same signed-in session, straight at the JSON API
    assert api.get(f"/api/exchanges/{other}").status == 404
    assert api.get(f"/api/exchanges?covenant={DRUGS}").json()["records"] == []
    seen = api.get("/api/exchanges").json()["records"]
    assert seen and {r["covenant"]["id"] for r in seen} == {SCHUREN}
    received = api.get(f"/api/recipients?recipient={RECIPIENT}").json()["records"]
    assert {r["covenant"]["id"] for r in received} <= {SCHUREN}
    report = api.get(f"/api/report?covenant={DRUGS}")
    assert report.status == 404 and "not in your scope" in report.json()["error"]

    admin = sign_in_as("admin").request
    assert admin.get(f"/api/exchanges/{other}").status == 200  # the record is there


def test_integrity_is_verified_on_request_in_the_background(site: Site, sign_in_as: SignIn):
    page = sign_in_as("manager")
    page.get_by_role("link", name="Integrity").click()
    # the integrity page loaded before its button is pressed, and the press posts the form:
    # on a loaded CI machine a press during the link's navigation was lost (nothing started)
    expect(page).to_have_url(re.compile(r"/integrity$"))
    page.wait_for_load_state()
    with page.expect_navigation():
        page.get_by_role("button", name="Verify the whole log now").click()
    result = page.locator("#last-result.ok")
    expect(result).to_contain_text("audit log intact", timeout=60_000)
    expect(page.get_by_text("manager", exact=True)).to_be_visible()
    snap(page, "11-integrity-verified")


def test_signing_out_revokes_the_session_cookie(site: Site, browser: Browser, sign_in_as: SignIn):
    page = sign_in_as("admin")
    cookies = page.context.cookies()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    replay = browser.new_context(base_url=site.url)
    try:
        replay.add_cookies(cookies)  # type: ignore[arg-type]
        stolen = replay.new_page()
        stolen.goto("/exchanges")
        expect(stolen).to_have_url(re.compile(r"/sign-in$"))
        assert stolen.request.get("/api/exchanges").status == 401
        snap(stolen, "12-signed-out-cookie-refused")
    finally:
        replay.close()
