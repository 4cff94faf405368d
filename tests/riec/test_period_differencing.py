"""Attack: compare the barrier plan and the coverage page across two days.

Suppression hides a count below 5 in one release; it does not hide the difference between two
releases of a count that grows. An attacker who saves the pages every morning learns, from a
current quarter (or month) that went from 13 to 14, that one signal about that municipality
came in yesterday. Only periods that are over may release a count: every figure the pages
show must be the same on both days, while the periods that are over still show theirs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from services.core.coverage.facts import Fact, category_of
from services.coverage.store import SqlCoverageStore
from services.web.app import create_web_app
from services.web.context import WebSettings
from tests.riec.helpers import KDF_COST, PASSWORD, build, plan, user

ALKMAAR = "GM0361"
METER = "energy.meter_tampering.v1"
TIP = "residents.anonymous_tip.v1"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def facts(month: str, signal_type: str, count: int, tag: str) -> list[Fact]:
    category = category_of(signal_type)
    assert category is not None
    return [
        Fact("p", f"{tag}-{signal_type}-{month}-{n}", month, ALKMAAR, signal_type, category)
        for n in range(count)
    ]


def figures(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON answer, by its path."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from figures(inner, f"{path}/{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from figures(inner, f"{path}[{index}]")
    else:
        yield path, value


def morning(app: Any) -> dict[str, Any]:
    """What the attacker saves each morning: the plan and the coverage pages, as JSON and
    HTML, for the municipality and the months around today."""
    client = TestClient(app, follow_redirects=False)
    form = client.get("/sign-in")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    client.post("/sign-in", data={"name": "ana", "password": PASSWORD, "csrf": token})
    saved: dict[str, Any] = {
        "plan": client.get("/api/plan", params={"municipality": ALKMAAR}).json(),
        "plan.html": client.get("/plan", params={"municipality": ALKMAAR}).text,
    }
    for month in ("2026-10", "2026-11", None):
        params = {"month": month} if month else {}
        answer = client.get("/api/coverage", params=params).json()
        saved[f"coverage {month}"] = answer
        saved[f"coverage.html {month}"] = client.get("/coverage", params=params).text
    return saved


def test_no_figure_changes_from_one_day_to_the_next(tmp_path):
    clock = Clock(datetime(2026, 11, 10, 8, tzinfo=UTC))  # Q4 and November in progress
    site = build(tmp_path / "riec.db", clock=clock)
    store = SqlCoverageStore(site.engine)
    store.create_schema()
    store.add(
        facts("2026-07", METER, 6, "a") + facts("2026-08", METER, 7, "a")  # Q3: over
        + facts("2026-08", TIP, 8, "a") + facts("2026-10", METER, 7, "a")  # October: over
        + facts("2026-11", METER, 6, "a") + facts("2026-11", TIP, 9, "a")  # November: not
    )  # fmt: skip
    plan(site).raise_barrier(
        user(site, "ana"), model="cannabis", step="cannabis.fit_out",
        partner="liander", kind="check", municipality=ALKMAAR,
        description="meter checks", since=date(2026, 8, 1),
    )  # fmt: skip
    app = create_web_app(
        site.engine, site.keys, WebSettings(secret=b"s" * 32, kdf_cost=KDF_COST),
        site.reid, site.cases, plan(site), clock=clock,
    )  # fmt: skip
    first = morning(app)
    store.add(facts("2026-11", METER, 1, "b") + facts("2026-11", TIP, 1, "b"))  # one day's
    clock.now += timedelta(days=1)
    second = morning(app)
    for page in ("plan", "coverage 2026-10", "coverage 2026-11", "coverage None"):
        before, after = dict(figures(first[page])), dict(figures(second[page]))
        changed = {p: (before.get(p), after.get(p)) for p in before.keys() | after.keys()
                   if before.get(p) != after.get(p)}  # fmt: skip
        assert changed == {}, f"{page}: a day's signals show as {changed}"
    for page in ("plan.html", "coverage.html 2026-10", "coverage.html 2026-11"):
        assert first[page] == second[page].replace(
            second[page].split('name="csrf" value="', 1)[-1].split('"', 1)[0],
            first[page].split('name="csrf" value="', 1)[-1].split('"', 1)[0],
        ), page
    # not vacuous: what is over is released, and the pages say what is in progress
    [barrier] = second["plan"]["barriers"]
    cells = {c["quarter"]: c for c in barrier["effect"]}
    assert cells["2026-Q3"]["complete"] and cells["2026-Q3"]["types"][METER] == 13
    assert cells["2026-Q3"]["reports"] == 8
    assert not cells["2026-Q4"]["complete"]
    assert {v for k, v in cells["2026-Q4"].items() if k in ("signals", "reports", "findings")} == {
        None
    }
    assert set(cells["2026-Q4"]["types"].values()) == {None}
    october = second["coverage 2026-10"]
    [row] = [r for r in october["rows"] if r["month"] == "2026-10" and r["municipality"] == ALKMAAR]
    assert row["indicators"] == 7 and october["in_progress"] == []
    assert second["coverage 2026-11"]["in_progress"] == ["2026-11"]
    assert second["coverage None"]["month"] == "2026-10"  # unasked: the newest month over
    assert "in progress" in second["coverage.html 2026-11"]
    assert "(in progress)" in second["plan.html"]
