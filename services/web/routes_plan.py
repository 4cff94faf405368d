"""The joint barrier plan page (``/plan``): barriers per barrier-model step, by whom, where and
since when, each with its measured effect per quarter (suppressed like the coverage page).

Every role may read it (the figures are the same for everyone, suppressed aggregates); RIEC
analysts and admins add barriers (a POST with the CSRF token; audited). Each view is
access-logged.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.riec.model import BARRIER_KINDS, Barrier, RiecError
from services.riec.plan import MEASURES, BarrierPlan, Cell
from services.web.context import Viewer, WebContext
from services.web.routes_auth import field
from services.web.routes_riec import RIEC_ROLES
from services.web.users import ROLES


def _cell_json(cell: Cell) -> dict[str, Any]:
    return {
        "quarter": str(cell.quarter),
        "offset": cell.offset,
        "complete": cell.complete,
        **dict(cell.counts),
        "types": dict(cell.types),
        "report_types": dict(cell.report_types),
    }


def _barrier_json(barrier: Barrier, cells: list[Cell]) -> dict[str, Any]:
    return {
        "id": barrier.id,
        "model": barrier.model,
        "step": barrier.step,
        "partner": barrier.partner,
        "kind": barrier.kind,
        "municipality": barrier.municipality,
        "description": barrier.description,
        "since": barrier.since.isoformat(),
        "effect": [_cell_json(c) for c in cells],
    }


def routes(context: WebContext, plan: BarrierPlan) -> APIRouter:
    router = APIRouter()

    def shown(request: Request, route: str) -> tuple[Viewer, str | None, list[Barrier]]:
        viewer = context.viewer(request, ROLES)
        municipality = request.query_params.get("municipality") or None
        if municipality is not None and municipality not in plan.municipalities:
            municipality = None
        found = plan.barriers(municipality)
        context.logged(viewer, route, {"municipality": municipality, "rows": len(found)})
        return viewer, municipality, found

    def page(
        viewer: Viewer, municipality: str | None, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        found = plan.barriers(municipality)
        steps = {s.id: (m.title, s.name) for m in plan.models.values() for s in m.steps}
        return context.page(
            "plan.html", viewer, status_code, barriers=[(b, plan.effect(b)) for b in found],
            municipality=municipality, names=plan.municipalities, steps=steps,
            models=plan.models, kinds=BARRIER_KINDS, measures=MEASURES,
            threshold=plan.threshold, may_add=viewer.user.role in RIEC_ROLES,
            partners=plan.partners_for(viewer.user),
            regional=plan.municipalities_for(viewer.user), **values,
        )  # fmt: skip

    @router.get("/plan", response_class=HTMLResponse)
    def plan_page(request: Request) -> HTMLResponse:
        viewer, municipality, _ = shown(request, "plan")
        done = "The barrier is in the plan." if request.query_params.get("added") else None
        return page(viewer, municipality, done=done)

    @router.get("/api/plan")
    def plan_json(request: Request) -> JSONResponse:
        _, _, found = shown(request, "plan")
        return JSONResponse(
            {
                "threshold": plan.threshold,
                "note": f"counts below {plan.threshold} are suppressed (null); signals and "
                "reports are sums of the published per-type counts only",
                "barriers": [_barrier_json(b, plan.effect(b)) for b in found],
            }
        )

    @router.post("/plan", response_model=None)
    async def add(request: Request) -> Response:
        viewer = context.viewer(request, RIEC_ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        model, _, step = field(form, "step").partition("|")
        try:
            since = date.fromisoformat(field(form, "since"))
        except ValueError:
            return page(viewer, None, 400, error="since must be a date like 2026-03-01")
        try:
            made = plan.raise_barrier(
                viewer.user, model=model, step=step, partner=field(form, "partner"),
                kind=field(form, "kind"), municipality=field(form, "municipality"),
                description=field(form, "description"), since=since,
            )  # fmt: skip
        except RiecError as error:
            context.logged(viewer, "plan-add", {"refused": True})
            return page(viewer, None, 400, error=str(error))
        context.logged(viewer, "plan-add", {"barrier": made.id})
        return RedirectResponse(f"/plan?municipality={made.municipality}&added=1", status_code=303)

    return router
