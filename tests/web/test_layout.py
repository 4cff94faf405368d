"""Every page of the workplace, in a real Chromium at a wide and a narrow window, over demo
data: no page may be wider than its window, no timestamp may break over two lines, and the
rows of the record tables stay one line high on a wide screen.

The tour below lists one or more visits per page; :func:`test_the_tour_visits_every_page`
fails when a page route of the app is missing from it, so a new page is checked from the
day it ships. Screenshots of every visit at every width go to
``out/test-artefacts/screenshots/layout-<width>-<visit>.png``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import Error as PlaywrightError

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.config import Paths, load_policy
from services.core import records
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.coverage.ingest import ingest
from services.coverage.store import SqlCoverageStore
from services.outcomes.batch import OutcomeStep
from services.outcomes.batch import Record as OutcomeRecord
from services.outcomes.store import SqlOutcomeStore
from services.reid.workflow import Reidentification
from services.riec.cases import CaseFiles
from services.riec.locate import locator
from services.riec.model import QueueFilters
from services.riec.plan import BarrierPlan
from services.riec.wiring import barrier_plan, case_files
from services.web.app import create_web_app
from services.web.context import WebSettings
from services.web.users import UserStore
from tests.reid.helpers import delivered
from tests.router.helpers import COVENANTS, NOW
from tests.web.browser import chromium, live_server, screenshot_path
from tests.web.conftest import KDF_COST, PASSWORD, SECRET, USERS, Hub, build_hub, planted_address

pytestmark = pytest.mark.browser

DRUGS = "drugslocaties-nh"
RECIPIENT = "riec-nh"
TOUR_USERS = {
    **USERS,
    "riec-officer": ("privacy-officer", [], [RECIPIENT]),
    "drugs-officer": ("privacy-officer", [DRUGS], []),
}
WIDE, NARROW = (1400, 900), (1024, 768)
WAIT_MS = 15_000
NOT_PAGES = re.compile(r"^/(api/|static|metrics$|healthz$|readyz$|report\.csv$)")
"""Routes that answer data, not a page: they are not on the tour."""

LAYOUT_PROBLEMS = """
() => {
  const problems = [];
  const width = window.innerWidth;
  const page = document.documentElement.scrollWidth;
  if (page > width) {
    const wide = [...document.querySelectorAll("main *, header *")]
      .filter((e) => e.getBoundingClientRect().right > width + 1)
      .filter((e) => !(e.parentElement && e.parentElement.getBoundingClientRect().right > width + 1))
      .map((e) => e.tagName.toLowerCase() + (e.getAttribute("class") ? "." + e.getAttribute("class") : ""));
    problems.push(`the page is ${page}px wide in a ${width}px window (past the edge: ${wide.join(", ")})`);
  }
  const stamp = /\\d{4}-\\d{2}-\\d{2}[ T]\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d+)?)?(?:Z|[+-]\\d{2}:\\d{2})?/g;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(stamp)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (tops.size > 1) problems.push(`the timestamp ${match[0]} breaks over ${tops.size} lines`);
    }
  }
  return problems;
}
"""

TALL_ROWS = """
() => {
  const tall = [];
  const cells = document.querySelectorAll("table.records tbody td");
  for (const cell of cells) {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
    if (tops.size > 1) tall.push(`the cell "${cell.innerText.trim()}" takes ${tops.size} lines`);
  }
  return {cells: cells.length, tall};
}
"""
RECORD_LISTS = {"home", "exchanges", "exchanges-withheld", "recipients"}
"""Visits that show a list of audit records: one line per record on a wide screen."""


@dataclass
class Site:
    url: str
    hub: Hub
    app: FastAPI
    workflow: Reidentification


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Demo records of 600 signals, their coverage facts, an integrity run and
    re-identification requests in every state, served by uvicorn."""
    hub = build_hub(tmp_path_factory.mktemp("layout") / "audit.db", TOUR_USERS, signals=600)
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(hub.keys), today=NOW.date()
    )
    assert loaded.policy is not None
    coverage = SqlCoverageStore(hub.engine)
    coverage.create_schema()
    ingest([orjson.dumps(s) for s in hub.signals], loaded.registry, loaded.policy, coverage, NOW)
    _indexed_for_indicators(hub)
    workflow = Reidentification(
        hub.engine, SqlAuditStore(hub.engine), Pseudonymiser(hub.keys), hub.covenants
    )
    riec = _riec_workplace(hub, workflow)
    app = create_web_app(
        hub.engine,
        hub.keys,
        WebSettings(secret=SECRET, kdf_cost=KDF_COST),
        workflow,
        riec,
        barrier_plan(riec.workplace, paths),
    )
    _a_case_and_a_barrier(hub, riec, barrier_plan(riec.workplace, paths))
    _requests_in_every_state(hub, workflow)
    _rejected_signals(hub, loaded)
    app.state.context.integrity.start("manager")
    assert app.state.context.integrity.join(60)
    try:
        with live_server(app) as url:
            yield Site(url, hub, app, workflow)
    finally:
        hub.engine.dispose()


def _riec_workplace(hub: Hub, workflow: Reidentification) -> CaseFiles:
    """riec-nh's feed of the demo signals in the workplace, as the feed reader stores it
    (decided in demo mode: the demo signs with TEST keys)."""
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(hub.keys), today=NOW.date(),
        demo=True,
    )  # fmt: skip
    made = []
    for signal in hub.signals:
        moment = datetime.fromisoformat(str(signal["time"]))
        outcome = process(orjson.dumps(signal), loaded.registry, loaded.policy, moment)
        made += [
            records.feed_message(d)
            for d in outcome.decisions
            if d.delivered and d.recipient == RECIPIENT
        ]
    cases = case_files(
        hub.engine, SqlAuditStore(hub.engine), hub.covenants, Paths.from_env({}), workflow
    )
    cases.workplace.receive(RECIPIENT, made, locator(Pseudonymiser(hub.keys)))
    return cases


def _a_case_and_a_barrier(hub: Hub, riec: CaseFiles, plan: BarrierPlan) -> None:
    users = UserStore(hub.engine, kdf_cost=KDF_COST)
    analyst = users.get("analyst")
    assert analyst is not None
    first, second = riec.workplace.queue(analyst, QueueFilters(), limit=2)
    riec.workplace.take(analyst, second.id)
    case = riec.open(analyst, first.id, "Barn on the dike: three partners, one location")
    riec.note(analyst, case.id, "Ask the grid operator whether the meter was replaced lately")
    plan.raise_barrier(
        analyst, model="cannabis", step="cannabis.acquire_location", partner="gemeente-alkmaar",
        kind="campaign", municipality="GM0361", since=NOW.date(),
        description="Letters to farmers about renting out empty barns",
    )  # fmt: skip


def _indexed_for_indicators(hub: Hub) -> None:
    """The demo signals in the outcome index, so the indicators page has rows to lay out
    (decided in demo mode: the demo signs with TEST keys)."""
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(hub.keys), today=NOW.date(),
        demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    store = SqlOutcomeStore(hub.engine)
    store.create_schema()
    step = OutcomeStep.build(loaded.registry, loaded.policy, Pseudonymiser(hub.keys))
    records = [OutcomeRecord("", orjson.dumps(s)) for s in hub.signals]
    store.write(step.extract(records, NOW, at_signal_time=True).entries)


def _rejected_signals(hub: Hub, loaded: Any) -> None:
    """A signal with an unknown type and one with a missing field: rejection records."""
    good = hub.signals[0]
    broken = [{**good, "id": f"{good['id'][:-4]}bad1", "type": "energy.unheard_of.v9"}]
    broken.append(
        {k: v for k, v in {**good, "id": f"{good['id'][:-4]}bad2"}.items() if k != "source"}
    )
    made = []
    for signal in broken:
        outcome = process(orjson.dumps(signal), loaded.registry, loaded.policy, NOW)
        assert outcome.rejection is not None
        made.append(records.rejection_record(outcome.rejection, actor="router"))
    SqlAuditStore(hub.engine, Checkpointer(KeyStoreSigner(hub.keys))).record(made, [])


def _requests_in_every_state(hub: Hub, workflow: Reidentification) -> None:
    users = UserStore(hub.engine, kdf_cost=KDF_COST)
    requester, approver = users.get("riec-officer"), users.get("drugs-officer")
    assert requester is not None and approver is not None
    record = delivered(hub.records, RECIPIENT, DRUGS, "ean", reidentify=True)
    steps = ("open", "approved", "rejected", "revealed")
    for step in steps:
        made = workflow.request(
            requester,
            recipient=RECIPIENT,
            covenant_id=DRUGS,
            pseudonym=record["pseudonyms"]["ean"],
            purpose=f"verify a tampered meter before a site visit ({step})",
            case_ref=f"RIEC-2026-{steps.index(step):04d}",
        )
        if step in ("approved", "revealed"):
            workflow.approve(made.id, approver)
        if step == "rejected":
            workflow.reject(made.id, approver, "the case reference does not match a file")
        if step == "revealed":
            workflow.reveal(made.id, requester)


Visit = Callable[[Page, Site], Any]


def go(path: str, status: int = 200) -> Visit:
    def visit(page: Page, _: Site) -> None:
        response = page.goto(path)
        assert response is not None and response.status == status, (path, response)

    return visit


def look_up_subject(page: Page, site: Site) -> None:
    typed, _ = planted_address(site.hub)
    page.goto("/subjects")
    page.get_by_label("Kind").select_option("address")
    page.get_by_label("Identifier").fill(typed)
    page.get_by_role("button", name="Look up").click()
    expect(
        page.get_by_role("heading", name=re.compile("records about this address"))
    ).to_be_visible()


def case_of(page: Page) -> str:
    """The case reference the tour files its request under, one per window width."""
    size = page.viewport_size
    assert size is not None
    return f"RIEC-2026-{size['width']}"


def file_reid_request(page: Page, site: Site) -> None:
    record = delivered(site.hub.records, RECIPIENT, DRUGS, "ean", reidentify=True)
    page.goto("/reid")
    page.get_by_label("Recipient").fill(RECIPIENT)
    page.get_by_label("Covenant").fill(DRUGS)
    page.get_by_label("Pseudonym").fill(record["pseudonyms"]["ean"])
    page.get_by_label("Purpose").fill("check the meter before the site visit on Thursday")
    page.get_by_label("Case reference").fill(case_of(page))
    page.get_by_role("button", name="File request").click()
    expect(page.get_by_role("status")).to_contain_text("is filed")


def reveal(page: Page, site: Site) -> None:
    """Reveal the request ``file_reid_request`` filed, once another officer approved it."""
    mine = next(r for r in site.workflow.listing() if r.case_ref == case_of(page))
    approver = UserStore(site.hub.engine, kdf_cost=KDF_COST).get("drugs-officer")
    assert approver is not None
    site.workflow.approve(mine.id, approver)
    page.goto("/reid")
    row = page.locator("table tbody tr").filter(has_text=case_of(page))
    row.get_by_role("button", name="Reveal once").click()
    expect(page.locator("output.revealed")).to_be_visible()


def out_of_scope(page: Page, site: Site) -> None:
    go(f"/report?covenant={DRUGS}", 404)(page, site)
    expect(page.get_by_role("status")).to_have_text(
        f"{DRUGS} is not in your scope. Your covenants: schimmige-schuren."
    )


def not_found(page: Page, site: Site) -> None:
    go("/no/such/page", 404)(page, site)
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def record_of(result: str) -> Visit:
    """The newest record with ``result``, opened from the search."""

    def visit(page: Page, _: Site) -> None:
        page.goto(f"/exchanges?result={result}")
        page.locator("table tbody tr td:first-child a").first.click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Record")

    return visit


def first_item(page: Page, _: Site) -> None:
    page.goto("/riec")
    page.locator("table.queue tbody tr td:first-child a").first.click()
    expect(page.get_by_role("heading", level=2, name="As delivered")).to_be_visible()


def first_case(page: Page, _: Site) -> None:
    page.goto("/riec/cases")
    page.locator("table tbody tr td:first-child a").first.click()
    expect(page.get_by_role("heading", level=2, name="Case file")).to_be_visible()


TOUR: list[tuple[str | None, str, str, Visit]] = [
    # (user, visit, route it covers, how)
    (None, "sign-in", "/sign-in", go("/sign-in")),
    (None, "unknown-page-signed-out", "404", not_found),
    ("admin", "home", "/", go("/")),
    ("admin", "exchanges", "/exchanges", go("/exchanges")),
    ("admin", "exchanges-withheld", "/exchanges", go("/exchanges?result=withheld")),
    ("admin", "exchanges-bad-date", "/exchanges", go("/exchanges?from=yesterday", 400)),
    ("admin", "record-delivered", "/exchanges/{reference}", record_of("delivered")),
    ("admin", "record-withheld", "/exchanges/{reference}", record_of("withheld")),
    ("admin", "record-rejected", "/exchanges/{reference}", record_of("rejected")),
    ("admin", "record-reid-revealed", "/exchanges/{reference}", record_of("revealed")),
    ("admin", "record-missing", "/exchanges/{reference}", go("/exchanges/999999", 404)),
    ("admin", "recipients-form", "/recipients", go("/recipients")),
    ("admin", "recipients", "/recipients", go(f"/recipients?recipient={RECIPIENT}")),
    ("admin", "subjects-form", "/subjects", go("/subjects")),
    ("admin", "subjects-found", "/subjects", look_up_subject),
    ("admin", "report-form", "/report", go("/report")),
    ("admin", "report", "/report", go(f"/report?covenant={DRUGS}")),
    ("admin", "coverage", "/coverage", go("/coverage")),
    ("admin", "coverage-month", "/coverage", go("/coverage?month=2026-10")),
    ("admin", "indicators", "/indicators", go("/indicators")),
    ("admin", "indicators-rules", "/indicators", go("/indicators?by=rule")),
    ("admin", "barriers", "/barriers", go("/barriers")),
    ("admin", "barriers-cannabis", "/barriers", go("/barriers?model=cannabis")),
    ("admin", "integrity", "/integrity", go("/integrity")),
    ("admin", "unknown-page", "404", not_found),
    ("manager", "manager-report", "/report", go(f"/report?covenant={DRUGS}")),
    ("manager", "manager-forbidden", "403", go("/exchanges", 403)),
    ("schuren", "report-out-of-scope", "/report", out_of_scope),
    ("riec-officer", "reid-filed", "/reid", file_reid_request),
    ("riec-officer", "reid-revealed", "/reid", reveal),
    ("drugs-officer", "reid-to-decide", "/reid", go("/reid")),
    ("analyst", "riec-queue", "/riec", go("/riec")),
    ("analyst", "riec-queue-assessing", "/riec", go("/riec?state=assessing")),
    ("analyst", "riec-queue-bad-score", "/riec", go("/riec?min_score=high", 400)),
    ("analyst", "riec-item", "/riec/items/{item_id}", first_item),
    ("analyst", "riec-item-missing", "/riec/items/{item_id}", go("/riec/items/none", 404)),
    ("analyst", "riec-cases", "/riec/cases", go("/riec/cases")),
    ("analyst", "riec-case", "/riec/cases/{case_id}", first_case),
    ("analyst", "plan", "/plan", go("/plan")),
    ("admin", "plan-alkmaar", "/plan", go("/plan?municipality=GM0361")),
]


def page_routes(app: FastAPI) -> set[str]:
    """The path of every route that answers with a page (GET, not an API or a file)."""
    return {
        route.path
        for route in iter_route_contexts(app.routes)
        if route.path and "GET" in (route.methods or ()) and not NOT_PAGES.match(route.path)
    }


def test_the_tour_visits_every_page(site: Site):
    visited = {route for _, _, route, _ in TOUR}
    assert page_routes(site.app) <= visited
    assert {"404", "403"} <= visited


@pytest.mark.parametrize("size", [WIDE, NARROW], ids=["1400", "1024"])
def test_no_page_is_wider_than_its_window(site: Site, browser: Browser, size: tuple[int, int]):
    width, height = size
    pages: dict[str | None, Page] = {}
    problems: list[str] = []
    for user, name, _, visit in TOUR:
        if user not in pages:
            context = browser.new_context(
                base_url=site.url, viewport={"width": width, "height": height}
            )
            context.set_default_timeout(WAIT_MS)
            pages[user] = context.new_page()
            if user is not None:
                sign_in(pages[user], user)
        page = pages[user]
        try:
            visit(page, site)
        except (AssertionError, PlaywrightError) as error:  # report it with the other pages'
            problems.append(f"{name} at {width}px: the visit failed: {error}".splitlines()[0])
        page.screenshot(path=str(screenshot_path(f"layout-{width}-{name}")), full_page=True)
        found = page.evaluate(LAYOUT_PROBLEMS)
        rows = page.evaluate(TALL_ROWS)
        if name in RECORD_LISTS and not rows["cells"]:
            found.append("no table.records to check")
        if width >= WIDE[0]:
            found += rows["tall"]
        problems += [f"{name} at {width}px: {p}" for p in found]
    for page in pages.values():
        page.context.close()
    assert not problems, "\n".join(problems)


def sign_in(page: Page, name: str) -> None:
    page.goto("/sign-in")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched
