"""The coverage page (NH Drugsalert): where indicators are high but few people report.

Shows the month's report-gap ranking, bar charts per municipality, the trend over twelve
months and a tile grid of the municipalities by safety region (not a geographic map: the
project ships no geometry). Everything on it comes from the suppressed release
(:mod:`services.core.coverage.release`): counts below the threshold show as "<5" and never
enter a total; a month not over yet shows "in progress", none of its counts. Open to every
role; the numbers are the same for everyone — a per-scope count
would let two users subtract their views and learn a small count. Each view is access-logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from services.core.coverage.errors import CoverageError
from services.core.coverage.release import DEFAULT_THRESHOLD, Gap, MonthTotal
from services.core.regions import ReferenceData
from services.coverage.store import SqlCoverageStore
from services.coverage.view import CoverageView, coverage_view, municipalities
from services.riec.plan import campaign_counts
from services.web.chart import bar_chart
from services.web.context import Viewer, WebContext
from services.web.users import ROLES

TREND_WIDTH, TREND_HEIGHT, TREND_PAD = 640, 220, 40
TILE, TILE_GAP, REGION_LABEL = 86, 4, 190
HEAT = ("#f2f2f2", "#fde0c5", "#f9a66c", "#e0582b", "#a3271c")
"""Tile fill: unranked, then gap quartiles from low to high."""


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    css: str
    points: str
    """SVG polyline points."""


@dataclass(frozen=True, slots=True)
class Trend:
    width: int
    height: int
    lines: list[Line]
    ticks: list[tuple[int, str]]
    """x and month label."""
    largest: int


def trend_chart(totals: Sequence[MonthTotal]) -> Trend:
    """Published reports and indicators per month as two polylines."""
    largest = max([t.indicators for t in totals] + [t.reports for t in totals] + [1])
    room_x, room_y = TREND_WIDTH - 2 * TREND_PAD, TREND_HEIGHT - 2 * TREND_PAD
    step = room_x / max(len(totals) - 1, 1)

    def points(values: list[int]) -> str:
        return " ".join(
            f"{TREND_PAD + i * step:.1f},{TREND_HEIGHT - TREND_PAD - room_y * v / largest:.1f}"
            for i, v in enumerate(values)
        )

    lines = [
        Line("indicators", "#154273", points([t.indicators for t in totals])),
        Line("reports", "#e0582b", points([t.reports for t in totals])),
    ]
    ticks = [(round(TREND_PAD + i * step), t.month) for i, t in enumerate(totals)]
    return Trend(TREND_WIDTH, TREND_HEIGHT, lines, ticks, largest)


@dataclass(frozen=True, slots=True)
class Tile:
    x: int
    y: int
    code: str
    name: str
    fill: str
    title: str


@dataclass(frozen=True, slots=True)
class TileGrid:
    width: int
    height: int
    regions: list[tuple[int, str]]
    tiles: list[Tile]


def tile_grid(reference: ReferenceData, ranking: Sequence[Gap]) -> TileGrid:
    """One row of tiles per safety region, coloured by report-gap quartile."""
    by_code = {g.municipality: g for g in ranking}
    positive = sorted(g.gap for g in ranking if g.gap > 0)

    def fill(gap: Gap | None) -> str:
        if gap is None:
            return HEAT[0]
        if gap.gap <= 0 or not positive:
            return HEAT[1]
        share = sum(1 for v in positive if v <= gap.gap) / len(positive)
        return HEAT[2] if share <= 0.5 else HEAT[3] if share <= 0.85 else HEAT[4]

    regions = sorted({m.safety_region for m in reference.municipalities.values()})
    per_row = 10
    tiles: list[Tile] = []
    labels: list[tuple[int, str]] = []
    y = 0
    for region in regions:
        members = sorted(
            (m for m in reference.municipalities.values() if m.safety_region == region),
            key=lambda m: m.name,
        )
        labels.append((y, region))
        for index, m in enumerate(members):
            gap = by_code.get(m.code)
            title = f"{m.name}: rank {gap.rank}, gap {gap.gap}" if gap else f"{m.name}: not ranked"
            tiles.append(
                Tile(
                    REGION_LABEL + (index % per_row) * (TILE + TILE_GAP),
                    y + (index // per_row) * (TILE // 2 + TILE_GAP),
                    m.code,
                    m.name,
                    fill(gap),
                    title,
                )
            )
        y += ((len(members) + per_row - 1) // per_row) * (TILE // 2 + TILE_GAP) + 2 * TILE_GAP
    width = REGION_LABEL + per_row * (TILE + TILE_GAP)
    return TileGrid(width, max(y, TILE), labels, tiles)


def routes(context: WebContext, reference: ReferenceData | None = None) -> APIRouter:
    router = APIRouter()
    store = SqlCoverageStore(context.engine)
    store.create_schema()
    ref = reference or ReferenceData.load()
    known = municipalities(ref)

    def build(request: Request, viewer: Viewer, route: str) -> CoverageView:
        month = request.query_params.get("month") or None
        view = coverage_view(
            store, known, month=month, today=context.clock().date(), threshold=DEFAULT_THRESHOLD
        )
        context.logged(viewer, route, {"month": view.month})
        return view

    @router.get("/coverage", response_class=HTMLResponse)
    def coverage_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, ROLES)
        try:
            view = build(request, viewer, "coverage")
        except CoverageError as error:
            return context.page("coverage.html", viewer, 400, error=str(error), view=None)
        rows = view.release.rows_of(view.month)
        ranked = {g.municipality: g for g in view.ranking}
        order = sorted(
            rows,
            key=lambda r: (
                r.municipality not in ranked,
                ranked[r.municipality].rank if r.municipality in ranked else 0,
                r.name,
            ),
        )
        t = view.release.threshold

        def label(name: str, value: int | None) -> str:
            return name if value is not None else f"{name} (<{t})"

        charts = {
            "Indicators per municipality": bar_chart(
                [(label(r.name, r.indicators), r.indicators or 0) for r in order]
            ),
            "Reports per municipality": bar_chart(
                [(label(r.name, r.reports), r.reports or 0) for r in order]
            ),
        }
        return context.page(
            "coverage.html",
            viewer,
            view=view,
            rows=order,
            ranked=ranked,
            campaigns=campaign_counts(context.engine),
            total=next(x for x in view.release.totals if x.month == view.month),
            charts=charts,
            trend=trend_chart(
                [x for x in view.release.totals if x.month not in view.release.in_progress]
            ),
            grid=tile_grid(ref, view.ranking),
            heat=HEAT,
        )

    @router.get("/api/coverage")
    def coverage_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, ROLES)
        try:
            view = build(request, viewer, "api/coverage")
        except CoverageError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse(view.to_json())

    return router
