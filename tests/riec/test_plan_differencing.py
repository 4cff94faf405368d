"""Attack: work out a suppressed count by differencing the barrier plan's figures — with each
other and with the coverage page's monthly cells.

Every figure the plan API and the coverage release show is paired with the cells (month x
signal type) it counts, by what the page says it counts. Whenever one figure's cells are a
subset of another's, their difference is the count of the cells in between: if that is 1..4,
a suppressed count was revealed. The attacker may also add released figures (a quarter's
released coverage months)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from itertools import permutations

import pytest

from services.core.coverage.by_type import release_by_type
from services.core.coverage.facts import Fact, category_of
from services.core.coverage.release import release
from services.coverage.store import SqlCoverageStore
from services.riec.plan import Quarter
from tests.riec.helpers import Site, plan, user
from tests.riec.test_plan import signed_in

ALKMAAR = "GM0361"
CONSUMPTION, ILLEGAL, METER = (
    "energy.consumption_anomaly.v1",
    "energy.illegal_connection.v1",
    "energy.meter_tampering.v1",
)
WATER, TIP, BARN = (
    "water.abnormal_use.v1",
    "residents.anonymous_tip.v1",
    "rural.barn_rental_approach.v1",
)
SEED: dict[str, dict[str, int]] = {
    # 2025-Q4: a suppressed month (Nov: 3) the plan's step total would give away (11 - 8)
    "2025-10": {METER: 6, ILLEGAL: 2},
    "2025-11": {ILLEGAL: 3},
    # 2026-Q1: one suppressed type behind a suppressed month: safe, nothing to give away
    "2026-01": {METER: 9},
    "2026-02": {ILLEGAL: 3},
    # 2026-Q2: months 4, 4 suppressed; releasing both types (6 + 12) would pin them: 10 - 18
    # is -8, and two "<5" months making up 8 are 4 and 4 — so the types are suppressed
    "2026-04": {CONSUMPTION: 6, ILLEGAL: 4},
    "2026-05": {ILLEGAL: 4},
    "2026-06": {ILLEGAL: 4},
    # 2026-Q3: the fit_out steps differ by one type (2); reports 11 in July of which 3 barn
    "2026-07": {CONSUMPTION: 2, ILLEGAL: 5, TIP: 8, BARN: 3},
    "2026-08": {METER: 4},
    "2026-09": {WATER: 6},
}

Atom = tuple[str, str]
"""(month, signal type)."""
Figure = tuple[str, int, frozenset[Atom]]
"""(what it is, its released value, the cells it counts)."""


def facts() -> list[Fact]:
    made = []
    for month, per_type in SEED.items():
        for signal_type, count in per_type.items():
            category = category_of(signal_type)
            assert category is not None
            made += [
                Fact("p", f"{signal_type}|{month}|{n}", month, ALKMAAR, signal_type, category)
                for n in range(count)
            ]
    return made


def counted(months: tuple[str, ...], types: set[str]) -> frozenset[Atom]:
    return frozenset((m, t) for m in months for t in types)


def size(all_facts: list[Fact], atoms: frozenset[Atom]) -> int:
    return sum(1 for f in all_facts if (f.month, f.signal_type) in atoms)


def plan_figures(site: Site, all_facts: list[Fact]) -> Iterator[Figure]:
    made = plan(site)
    ana = user(site, "ana")
    registry = site.workplace.registry
    report_types = {t for t in registry.types() if category_of(t) == "reports"}
    for model in made.models.values():
        for step in model.steps:
            made.raise_barrier(
                ana, model=model.model, step=step.id, partner="gemeente-alkmaar",
                kind="check", municipality=ALKMAAR, description=step.id,
                since=date(2026, 5, 1),
            )  # fmt: skip
    client = signed_in(site, "ana")
    shown = client.get("/api/plan", params={"municipality": ALKMAAR}).json()["barriers"]
    assert len(shown) == sum(len(m.steps) for m in made.models.values())
    for barrier in shown:
        step_types = {
            t for t in registry.types() if barrier["step"] in registry.get(t).barrier_steps
        }
        for cell in barrier["effect"]:
            year, number = cell["quarter"].split("-Q")
            months = Quarter(int(year), int(number)).months
            per_type = cell.get("types")
            released = per_type if per_type is not None else dict.fromkeys(step_types, 0)
            for signal_type, value in released.items():
                if value is not None and per_type is not None:
                    support = counted(months, {signal_type})
                    yield f"{cell['quarter']} {signal_type}", value, support
            summed = {t for t, v in released.items() if v is not None}
            if cell["signals"] is not None:
                support = counted(months, summed)
                yield f"{cell['quarter']} {barrier['step']} signals", cell["signals"], support
            reports_shown = cell.get("report_types")
            reports = (
                report_types
                if reports_shown is None
                else {t for t, v in reports_shown.items() if v is not None}
            )
            if cell["reports"] is not None:
                yield f"{cell['quarter']} reports", cell["reports"], counted(months, reports)


def coverage_figures(site: Site) -> Iterator[Figure]:
    months = sorted(SEED)
    store = SqlCoverageStore(site.engine)
    released = release(store.counts(months), [(ALKMAAR, "Alkmaar")], months)
    by_quarter: dict[tuple[str, str], list[Figure]] = {}
    for row in released.rows:
        for category in ("reports", "indicators"):
            value = getattr(row, category)
            if value is None:
                continue
            types = {t for t in site.workplace.registry.types() if category_of(t) == category}
            support = counted((row.month,), types)
            figure = (f"coverage {row.month} {category}", value, support)
            yield figure
            quarter = str(Quarter.of(date.fromisoformat(row.month + "-01")))
            by_quarter.setdefault((quarter, category), []).append(figure)
    for (quarter, category), figures in by_quarter.items():  # the attacker adds them up
        yield (
            f"coverage {quarter} {category} (released months added)",
            sum(v for _, v, _ in figures),
            frozenset().union(*(s for _, _, s in figures)),
        )


def test_no_difference_of_released_figures_reveals_a_suppressed_count(site: Site):
    all_facts = facts()
    store = SqlCoverageStore(site.engine)
    store.create_schema()
    store.add(all_facts)
    figures = [*plan_figures(site, all_facts), *coverage_figures(site)]
    for name, value, support in figures:  # each figure counts what it says it counts
        assert value == size(all_facts, support), name
        assert value >= 5, name
    revealed = [
        (a, b, va - vb)
        for (a, va, sa), (b, vb, sb) in permutations(figures, 2)
        if sb < sa and 1 <= va - vb <= 4
    ]
    assert revealed == []
    names = {n for n, _, _ in figures}
    assert "2026-Q1 cannabis.fit_out signals" in names  # the safe figures are still shown
    assert "2026-Q1 synthetic.fit_out signals" in names
    assert "2026-Q2 cannabis.fit_out signals" not in names  # it would pin two months at 4


@pytest.mark.parametrize(
    ("counts", "months", "shown"),
    [
        ({ILLEGAL: 5, CONSUMPTION: 2}, (7, 0, 0), {}),  # 7 - 5 = 2 would be the suppressed type
        ({ILLEGAL: 5, CONSUMPTION: 2}, (3, 2, 2), {ILLEGAL: 5}),  # months all suppressed: 0 - 5
        ({ILLEGAL: 9, CONSUMPTION: 3}, (12, 0, 0), {}),  # 12 - 9 = 3: the 9 goes too
        ({ILLEGAL: 6, METER: 5}, (8, 3, 0), {}),  # a suppressed month of 3: both go (8-11, 8-6)
        ({ILLEGAL: 6, METER: 7}, (13, 0, 0), {ILLEGAL: 6, METER: 7}),  # nothing suppressed
        ({ILLEGAL: 6, METER: 7, CONSUMPTION: 5}, (6, 6, 6), {ILLEGAL: 6, METER: 7, CONSUMPTION: 5}),
    ],
)
def test_complementary_suppression(
    counts: dict[str, int], months: tuple[int, ...], shown: dict[str, int]
):
    assert release_by_type(counts, category_of, lambda _: months, 5) == shown


def test_a_remainder_at_its_largest_does_not_pin_the_suppressed_types():
    # months 6, 6, 6 all shown; types 10, 4, 4: 18 - 10 = 8 is >= 5, but two suppressed types
    # of at most 4 each summing to 8 are both 4
    counts = {ILLEGAL: 10, METER: 4, CONSUMPTION: 4}
    assert release_by_type(counts, category_of, lambda _: (6, 6, 6), 5) == {}


def test_a_remainder_at_its_smallest_does_not_pin_the_suppressed_months():
    # coverage shows 20 and two "<5" months; the plan would show 14 + 14: 20 - 28 = -8, and
    # two suppressed months of at most 4 each making up 8 are both 4
    counts = {ILLEGAL: 14, METER: 14}
    released = release_by_type(counts, category_of, lambda _: (4, 4, 20), 5)
    assert sum(released.values()) != 28


def test_the_api_names_what_each_sum_is_of(site: Site):
    store = SqlCoverageStore(site.engine)
    store.create_schema()
    store.add(facts())
    plan(site).raise_barrier(
        user(site, "ana"), model="synthetic", step="synthetic.fit_out", partner="pwn",
        kind="check", municipality=ALKMAAR, description="d", since=date(2026, 8, 1),
    )  # fmt: skip
    [barrier] = signed_in(site, "ana").get("/api/plan").json()["barriers"]
    q1 = next(c for c in barrier["effect"] if c["quarter"] == "2026-Q1")
    assert (q1["types"], q1["signals"]) == ({ILLEGAL: None, METER: 9}, 9)
    q3 = next(c for c in barrier["effect"] if c["quarter"] == "2026-Q3")
    assert q3["types"] == {ILLEGAL: None, METER: None}  # 13 released in months - 11 = 2
    assert q3["signals"] is None
    precursor = "chemicals.precursor_transaction.v1"
    assert q3["report_types"] == {precursor: None, TIP: None, BARN: None}  # 11 - 8 = 3 barns
    assert q3["reports"] is None
