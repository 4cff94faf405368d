"""The indicators page: every indicator tested against outcomes (docs/outcomes.md).

Per signal type, partner, covenant rule and stacking rule: how many signals were followed
within 180 days by a positive finding at the same location, by a negative check, or by nothing
yet; precision with its 95 % Wilson interval, precision among checked locations, the median
lead time, and a chart of each over the months. Everything comes from the suppressed release
(:mod:`services.core.outcomes.indicators`): counts below 5 show as "<5" and enter no rate.
Open to every role, the same numbers for everyone (a per-scope count would let two users
subtract their views); the threshold cannot be lowered here. Each view is access-logged. The
release is computed at most once a minute (it reads the whole index).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from services.config import Paths
from services.core.errors import SchakelError
from services.core.outcomes.indicators import (
    DEFAULT_WINDOW_DAYS,
    DIMENSIONS,
    IndicatorRelease,
    IndicatorRow,
)
from services.outcomes.indicators import indicator_release
from services.outcomes.store import SqlOutcomeStore
from services.stacking.config_files import load_stacking_config
from services.web.chart import bar_chart
from services.web.context import WebContext
from services.web.users import ROLES

TREND_WIDTH, TREND_HEIGHT, TREND_PAD = 640, 200, 40
CACHE_S = 60.0
NAMES = {"type": "Signal type", "partner": "Partner", "rule": "Covenant rule",
         "stacking": "Stacking rule"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Trend:
    width: int
    height: int
    points: str
    dots: list[tuple[float, float, str]]
    """x, y and the title of each published month."""
    ticks: list[tuple[int, str]]


def precision_trend(rows: Sequence[IndicatorRow]) -> Trend:
    """Precision per month (0 to the largest month, at least 5 %) as a polyline."""
    shown = [r for r in rows if r.precision is not None]
    top = max([r.precision or 0.0 for r in shown] + [0.05])
    room_x, room_y = TREND_WIDTH - 2 * TREND_PAD, TREND_HEIGHT - 2 * TREND_PAD
    step = room_x / max(len(rows) - 1, 1)
    dots: list[tuple[float, float, str]] = []
    ticks: list[tuple[int, str]] = []
    for i, row in enumerate(rows):
        x = TREND_PAD + i * step
        ticks.append((round(x), str(row.month)))
        if row.precision is not None:
            y = TREND_HEIGHT - TREND_PAD - room_y * row.precision / top
            dots.append((round(x, 1), round(y, 1), f"{row.month}: {row.precision:.1%}"))
    points = " ".join(f"{x},{y}" for x, y, _ in dots)
    return Trend(TREND_WIDTH, TREND_HEIGHT, points, dots, ticks)


class CachedRelease:
    """The release, recomputed at most every ``ttl`` seconds."""

    def __init__(self, build: Callable[[], IndicatorRelease], ttl: float = CACHE_S) -> None:
        self._build = build
        self._ttl = ttl
        self._lock = threading.Lock()
        self._made: tuple[float, IndicatorRelease] | None = None

    def get(self) -> IndicatorRelease:
        with self._lock:
            if self._made is None or time.monotonic() - self._made[0] > self._ttl:
                self._made = (time.monotonic(), self._build())
            return self._made[1]


def routes(context: WebContext, paths: Paths | None = None) -> APIRouter:
    router = APIRouter()
    store = SqlOutcomeStore(context.engine)
    store.create_schema()
    where = paths or Paths.from_env()
    window = timedelta(days=DEFAULT_WINDOW_DAYS)

    def build() -> IndicatorRelease:
        try:
            stacking = load_stacking_config(where.covenants).stacking
        except SchakelError:
            stacking = "stacking"
        return indicator_release(store, window=window, stacking_rule=stacking)

    cached = CachedRelease(build)

    @router.get("/indicators", response_class=HTMLResponse)
    def indicators_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, ROLES)
        by = request.query_params.get("by") or "type"
        if by not in DIMENSIONS:
            return context.page(
                "indicators.html", viewer, 400, error=f"unknown view {by!r}: use one of "
                + ", ".join(DIMENSIONS), released=None,
            )  # fmt: skip
        key = request.query_params.get("key") or None
        released = cached.get()
        context.logged(viewer, "indicators", {"by": by, "key": key})
        totals = released.totals(by)
        keys = [r.key for r in totals]
        chosen = key if key in keys else (keys[0] if keys else None)
        t = released.threshold

        def label(row: IndicatorRow) -> str:
            return row.key if row.positive is not None else f"{row.key} (<{t})"

        charts = {
            "Signals followed by a finding": bar_chart(
                [(label(r), r.positive or 0) for r in totals]
            ),
            "Precision, per mille of signals": bar_chart(
                [(r.key, round((r.precision or 0.0) * 1000)) for r in totals]
            ),
        }
        trend = released.trend(by, chosen) if chosen else []
        return context.page(
            "indicators.html",
            viewer,
            released=released,
            by=by,
            names=NAMES,
            dimensions=DIMENSIONS,
            totals=totals,
            chosen=chosen,
            charts=charts,
            trend_rows=trend,
            trend=precision_trend(trend),
        )

    @router.get("/api/indicators")
    def indicators_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, ROLES)
        released = cached.get()
        context.logged(viewer, "api/indicators", {})
        return JSONResponse(released.to_json())

    return router
