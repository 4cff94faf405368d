"""The joint barrier plan: barriers per step and municipality, audited; their measured effect
per quarter from coverage facts and findings, small counts suppressed; the coverage page's
municipalities link to the campaigns aimed at them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.config import Paths
from services.core.coverage.facts import Fact
from services.core.outcomes.entries import Entries, OutcomeEntry
from services.coverage.store import SqlCoverageStore
from services.riec.model import RiecError
from services.riec.plan import BarrierPlan, Quarter
from tests.riec.helpers import PASSWORD, Site, plan, user, web_app
from tests.web.conftest import csrf_of

ALKMAAR, BERGEN = "GM0361", "GM0373"
STEP = "cannabis.acquire_location"


def seeded(site: Site) -> BarrierPlan:
    """Facts and findings with known counts per quarter in Alkmaar (and a few in Bergen)."""
    made = plan(site)
    types = [
        t for t in site.workplace.registry.types()
        if STEP in site.workplace.registry.get(t).barrier_steps
    ]  # fmt: skip
    assert "rural.barn_rental_approach.v1" in types
    per_quarter = {"2026-01": 9, "2026-04": 3, "2026-07": 12}  # Q1, Q2 (suppressed), Q3
    facts = [
        Fact(
            "lto-meldpunt",
            f"a-{month}-{n}",
            month,
            ALKMAAR,
            "rural.barn_rental_approach.v1",
            "reports",
        )
        for month, count in per_quarter.items()
        for n in range(count)
    ]
    facts += [
        Fact("pwn", f"w-{n}", "2026-08", ALKMAAR, "water.abnormal_use.v1", "indicators")
        for n in range(20)  # not about acquiring a location: no signal of the step
    ]
    facts += [
        Fact(
            "lto-meldpunt", f"b-{n}", "2026-07", BERGEN, "rural.barn_rental_approach.v1", "reports"
        )
        for n in range(8)
    ]
    store = SqlCoverageStore(site.engine)
    store.create_schema()
    store.add(facts)
    findings = [
        OutcomeEntry(
            source="politie-nh", signal_id=f"f-{n}", signal_type="police.location_finding.v1",
            outcome_class="finding", time=datetime(2026, 8, 1 + n, tzinfo=UTC),
            municipality=ALKMAAR, data={}, leaves=(), subjects={}, rules=(), basis=None,
            keep_until=datetime(2028, 1, 1, tzinfo=UTC), locations=(f"p1.location{n}",),
        )
        for n in range(6)
    ]  # fmt: skip
    site.outcomes.write(Entries(outcomes=findings))
    return made


def test_a_barrier_is_audited_and_its_effect_measured_per_quarter(site: Site):
    made = seeded(site)
    ana = user(site, "ana")
    barrier = made.raise_barrier(
        ana, model="cannabis", step=STEP, partner="lto-meldpunt", kind="campaign",
        municipality=ALKMAAR, description="Letters to farmers about renting out empty barns",
        since=date(2026, 5, 15),
    )  # fmt: skip
    assert [b.id for b in made.barriers(ALKMAAR)] == [barrier.id]
    assert made.barriers(BERGEN) == []
    cells = {str(c.quarter): c for c in made.effect(barrier)}
    assert list(cells) == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert cells["2026-Q2"].offset == 0
    assert cells["2026-Q1"].counts == {"signals": 9, "reports": 9, "findings": None}
    assert cells["2026-Q2"].counts == {"signals": None, "reports": None, "findings": None}  # 3 < 5
    assert cells["2026-Q3"].counts == {"signals": 12, "reports": 12, "findings": 6}
    assert cells["2025-Q4"].counts == dict.fromkeys(("signals", "reports", "findings"))
    records = [
        r for _, r in site.workplace.audit.records(limit=100_000) if r["action"] == "riec-barrier"
    ]
    assert [r["riec"]["barrier"] for r in records] == [barrier.id]
    assert records[0]["actor"] == "ana" and records[0]["riec"]["municipality"] == ALKMAAR


def test_cells_are_calendar_quarters_whatever_the_start_day(site: Site):
    made = seeded(site)
    ana = user(site, "ana")
    early = made.raise_barrier(
        ana, model="cannabis", step=STEP, partner="pwn", kind="check", municipality=ALKMAAR,
        description="early", since=date(2026, 4, 1),
    )  # fmt: skip
    late = made.raise_barrier(
        ana, model="cannabis", step=STEP, partner="pwn", kind="check", municipality=ALKMAAR,
        description="late", since=date(2026, 6, 30),
    )  # fmt: skip
    assert made.effect(early) == made.effect(late)
    assert Quarter.of(date(2026, 6, 30)).months == ("2026-04", "2026-05", "2026-06")


def test_bad_barriers_are_refused(site: Site):
    made = plan(site)
    ana = user(site, "ana")
    good = {
        "model": "cannabis", "step": STEP, "partner": "pwn", "kind": "campaign",
        "municipality": ALKMAAR, "description": "d", "since": date(2026, 1, 1),
    }  # fmt: skip
    for change, message in (
        ({"model": "heroin"}, "no barrier model"),
        ({"step": "synthetic.produce"}, "has no step"),
        ({"kind": "poster"}, "kind must be"),
        ({"municipality": "GM9999"}, "unknown municipality"),
        ({"description": " "}, "description is needed"),
        ({"description": "ok\x1b[2J\x1b[31mforged"}, r"control character \(U\+001B\)"),
        ({"description": "line\nbreak"}, r"control character \(U\+000A\)"),
        ({"description": "abc\u202eevil"}, r"control character \(U\+202E\)"),
        ({"description": "nul\x00"}, r"control character \(U\+0000\)"),
        ({"municipality": "GM0363"}, "GM0363 is outside your RIEC's region"),  # Amsterdam
        ({"partner": "campagne team"}, "unknown partner 'campagne team'"),
        ({"partner": "gemeente-amsterdam"}, "not a party of your covenants"),
    ):
        with pytest.raises(RiecError, match=message):
            made.raise_barrier(ana, **{**good, **change})  # type: ignore[arg-type]
    narrow = user(site, "drugs-only")  # a party of nh-drugsalert only is not theirs to name
    with pytest.raises(RiecError, match="not a party of your covenants"):
        made.raise_barrier(narrow, **{**good, "partner": "campagneteam-nh"})  # type: ignore[arg-type]
    for name in ("other-riec", "drugs-officer"):  # another RIEC's region; no region at all
        with pytest.raises(RiecError, match="outside your RIEC's region"):
            made.raise_barrier(user(site, name), **good)  # type: ignore[arg-type]
    assert made.barriers() == []
    made.raise_barrier(user(site, "admin"), **{**good, "municipality": "GM0363"})  # type: ignore[arg-type]
    assert [b.municipality for b in made.barriers()] == ["GM0363"]


def signed_in(site: Site, name: str) -> TestClient:
    client = TestClient(web_app(site), follow_redirects=False)
    form = client.get("/sign-in")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    client.post("/sign-in", data={"name": name, "password": PASSWORD, "csrf": token})
    return client


def test_the_plan_page_and_the_coverage_link(site: Site):
    seeded(site)
    ana = signed_in(site, "ana")
    form = {
        "csrf": csrf_of(ana), "step": f"cannabis|{STEP}", "kind": "campaign",
        "partner": "campagneteam-nh", "municipality": ALKMAAR, "since": "2026-05-15",
        "description": "Campaign for farmers: report approaches to rent your barn",
    }  # fmt: skip
    for change, message in (
        ({"municipality": "GM0363"}, "GM0363 is outside your RIEC&#39;s region"),
        ({"partner": "Campagne <b>team</b>"}, "unknown partner"),
    ):
        refused_form = ana.post("/plan", data={**form, **change})
        assert refused_form.status_code == 400 and message in refused_form.text
    added = ana.post("/plan", data=form)
    assert added.status_code == 303
    page = ana.get(added.headers["location"])
    assert "Campaign for farmers" in page.text and "&lt;5" in page.text
    api = ana.get("/api/plan", params={"municipality": ALKMAAR}).json()
    [barrier] = api["barriers"]
    q3 = next(c for c in barrier["effect"] if c["quarter"] == "2026-Q3")
    assert (q3["signals"], q3["reports"], q3["findings"]) == (12, 12, 6)
    officer = signed_in(site, "drugs-officer")
    assert officer.get("/plan").status_code == 200  # every role reads the plan
    refused = officer.post("/plan", data={**form, "csrf": csrf_of(officer)})
    assert refused.status_code == 403
    coverage = officer.get("/coverage", params={"month": "2026-07"}).text
    assert f'href="/plan?municipality={ALKMAAR}">1 campaign</a>' in coverage
    assert f'href="/plan?municipality={BERGEN}"' not in coverage


def stricter(covenant: Any, min_cell: int, *, party: bool) -> Any:
    """``covenant`` with its coverage aggregates' (or, with ``party``, its aggregate-only
    parties') ``min_cell`` raised to ``min_cell``."""
    if party:
        parties = {
            k: p.model_copy(update={"aggregate_only": p.aggregate_only.model_copy(
                update={"min_cell": min_cell})}) if p.aggregate_only else p
            for k, p in covenant.parties.items()
        }  # fmt: skip
        return covenant.model_copy(update={"parties": parties})
    aggregates = [a.model_copy(update={"min_cell": min_cell}) for a in covenant.aggregates]
    return covenant.model_copy(update={"aggregates": aggregates})


@pytest.mark.parametrize("party", [False, True])
def test_the_plan_suppresses_as_strictly_as_the_covenants_in_force(site: Site, party: bool):
    from services.riec.wiring import barrier_plan

    seeded(site)
    covenants = site.loaded.policy.covenants
    assert any(c.aggregates for c in covenants)
    strict = [stricter(c, 10, party=party) for c in covenants]
    made = barrier_plan(site.workplace, Paths.from_env({}), strict)
    assert made.threshold == 10
    barrier = made.raise_barrier(
        user(site, "ana"), model="cannabis", step=STEP, partner="pwn", kind="check",
        municipality=ALKMAAR, description="d", since=date(2026, 5, 15),
    )  # fmt: skip
    cells = {str(c.quarter): c for c in made.effect(barrier)}
    assert cells["2026-Q1"].counts == {"signals": None, "reports": None, "findings": None}  # 9
    assert cells["2026-Q3"].counts == {"signals": 12, "reports": 12, "findings": None}  # 6
    assert plan(site).threshold == 5  # the shipped covenants ask 5: never below it
