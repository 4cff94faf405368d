"""The RIEC analyst's workplace in a real headless Chromium: triage, a case file with notes, a
four-eyes re-identification started from the case, the outcome, a hand-over and the barrier
plan — and an analyst of another RIEC refused in pages and API.

Screenshots of each step go to ``out/test-artefacts/screenshots/riec-*.png``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from services.riec.model import ItemState, QueueFilters
from tests.riec.helpers import PASSWORD, Site, build, user, web_app
from tests.web.browser import chromium, live_server, screenshot_path

pytestmark = pytest.mark.browser

WAIT_MS = 15_000
ALERT = "hub.stacked_location_alert.v1"
MAYORS = ("GM0361", "GM0479", "GM0392")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, str]]:
    built = build(tmp_path_factory.mktemp("riec-browser") / "riec.db")
    try:
        with live_server(web_app(built)) as url:
            yield built, url
    finally:
        built.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


SignIn = Callable[[str], Page]


@pytest.fixture
def sign_in_as(site: tuple[Site, str], browser: Browser) -> Iterator[SignIn]:
    contexts: list[BrowserContext] = []

    def signed_in(name: str) -> Page:
        context = browser.new_context(
            base_url=site[1], viewport={"width": 1200, "height": 800}, device_scale_factor=0.75
        )
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
    path = screenshot_path(f"riec-{name}")
    page.screenshot(path=str(path), full_page=True)
    return path


def test_triage_an_alert(site: tuple[Site, str], sign_in_as: SignIn):
    riec, _ = site
    page = sign_in_as("ana")
    expect(page).to_have_url(re.compile(r"/riec$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Alert queue")
    page.get_by_label("Signal type").select_option(ALERT)
    page.get_by_role("button", name="Filter").click()
    alerts = riec.workplace.queue(user(riec, "ana"), QueueFilters(signal_type=ALERT))
    rows = page.locator("table.queue tbody tr")
    expect(rows).to_have_count(len(alerts))
    snap(page, "01-queue-alerts")
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Stacked-location alert")
    page.get_by_role("button", name="Take up").click()
    expect(page.get_by_role("status")).to_contain_text("being assessed, held by you")
    snap(page, "02-item-taken")
    page.get_by_label("Reason for dismissing").fill("one source only; known legal grower")
    page.get_by_role("button", name="Dismiss").click()
    expect(page.get_by_role("status")).to_contain_text("dismissed with your reason")
    expect(page.locator("table.worklist tbody tr")).to_have_count(2)
    assert riec.workplace.item(user(riec, "ana"), alerts[0].id).state is ItemState.DISMISSED


def test_a_case_file_with_reidentification_and_outcome(site: tuple[Site, str], sign_in_as: SignIn):
    riec, _ = site
    alert = riec.workplace.queue(
        user(riec, "ana"), QueueFilters(signal_type=ALERT, state=ItemState.NEW)
    )[0]
    page = sign_in_as("ana")
    page.goto(f"/riec/items/{alert.id}")
    page.get_by_label("New case title").fill("Barn at the dike, three sources")
    page.get_by_role("button", name="Put in case").click()
    expect(page.get_by_role("status")).to_contain_text("The case is open")
    case_id = page.url.split("/riec/cases/", 1)[1].split("?", 1)[0]
    page.get_by_label("Note").fill("Neighbour reports a van at night; meter tampering flagged")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_contain_text("note is in the case file")
    page.get_by_label("Why (the case id is the purpose)").fill("site visit planned Thursday")
    page.get_by_role("button", name="Request re-identification").click()
    expect(page.get_by_role("status")).to_contain_text("re-identification request is filed")
    snap(page, "03-case-file")
    [request] = [r for r in riec.reid.listing() if r.case_ref == case_id]
    assert request.purpose.startswith(f"case {case_id}")

    officer = sign_in_as("drugs-officer")
    officer.goto("/reid")
    row = officer.locator("table tbody tr").filter(has_text=case_id)
    row.get_by_role("button", name="Approve").click()
    expect(officer.get_by_role("status")).to_contain_text("is approved")

    page.goto("/reid")
    page.locator("table tbody tr").filter(has_text=case_id).get_by_role(
        "button", name="Reveal once"
    ).click()
    expect(page.locator("output.revealed")).to_be_visible()

    page.goto(f"/riec/cases/{case_id}")
    page.get_by_label("Outcome").select_option("finding")
    page.get_by_label("What happened").fill("cannabis grow dismantled by the police")
    page.get_by_role("button", name="Record outcome and close").click()
    expect(page.get_by_role("status")).to_contain_text("case is closed")
    snap(page, "04-case-closed")
    assert any(o.signal_id == case_id for o in riec.outcomes.all_outcomes())


def test_hand_over_a_case_to_the_mayor(site: tuple[Site, str], sign_in_as: SignIn):
    riec, _ = site
    item = next(
        i
        for i in riec.workplace.queue(
            user(riec, "ana"), QueueFilters(state=ItemState.NEW), limit=10_000
        )
        if i.municipality in MAYORS
        and str(i.message["data"].get("address", "")).startswith("r")
        and i.covenant_id == "drugslocaties-nh"
    )
    page = sign_in_as("ana")
    page.goto(f"/riec/items/{item.id}")
    page.get_by_label("New case title").fill("13b: premises with a dismantled grow")
    page.get_by_role("button", name="Put in case").click()
    expect(page.get_by_role("status")).to_contain_text("The case is open")
    page.get_by_label("Premises (your pseudonym)").select_option(item.message["data"]["address"])
    page.get_by_label("Hand over for").select_option("closure_13b")
    page.get_by_role("button", name="Hand over").click()
    expect(page.get_by_role("status")).to_contain_text("handed over as a signal")
    expect(page.locator("table.worklist").last).to_contain_text("handed over for closure_13b")
    snap(page, "05-handed-over")
    assert [source for source, _ in riec.published] == ["riec-nh"]


def test_the_barrier_plan(site: tuple[Site, str], sign_in_as: SignIn):
    page = sign_in_as("ana")
    page.goto("/plan")
    page.get_by_label("Step").select_option("cannabis|cannabis.acquire_location")
    page.get_by_label("Kind").select_option("campaign")
    page.get_by_label("Partner").select_option("campagneteam-nh")
    page.get_by_label("Municipality").last.select_option("GM0361")
    page.get_by_label("Since").fill("2026-09-01")
    page.get_by_label("Barrier", exact=True).fill(
        "Letters to farmers about renting out empty barns"
    )
    page.get_by_role("button", name="Add to plan").click()
    expect(page.get_by_role("status")).to_have_text("The barrier is in the plan.")
    expect(page.get_by_role("heading", name=re.compile("Letters to farmers"))).to_be_visible()
    expect(page.locator("table.effect").first).to_contain_text("2026-Q3 (raised)")
    snap(page, "06-barrier-plan")


def test_another_riecs_analyst_is_refused(site: tuple[Site, str], sign_in_as: SignIn):
    riec, _ = site
    item = riec.workplace.queue(user(riec, "ana"), QueueFilters(), limit=1)[0]
    page = sign_in_as("other-riec")
    expect(page.get_by_text("Nothing in the queue matches.")).to_be_visible()
    response = page.goto(f"/riec/items/{item.id}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    api = page.request.get(f"/api/riec/items/{item.id}")
    assert api.status == 404 and api.json() == {"error": "no such item in your scope"}
    assert page.request.get("/api/riec/items").json()["items"] == []
