"""The RIEC analyst's queue and items — as pages and as JSON.

Only ``riec-analyst`` users (within their RIEC and covenants) and admins. An item outside the
user's reach answers 404 like a missing one. Each step is a POST with the session's CSRF token
and redirects back to the item, which confirms it; every step is an audit record
(:mod:`services.riec.records`), every view an access-log row.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.riec.cases import CaseFiles
from services.riec.model import HeldError, Item, ItemState, NotFoundError, RiecError
from services.riec.workplace import Workplace
from services.web.context import Viewer, WebContext
from services.web.forms import FormError
from services.web.riec_forms import QUEUE_FIELDS, queue_filters
from services.web.riec_ids import loggable_id
from services.web.riec_steps import UnknownStepError, item_step
from services.web.routes_auth import field
from services.web.users import ADMIN, RIEC_ANALYST

RIEC_ROLES = (RIEC_ANALYST, ADMIN)
PAGE = 50
DONE = {
    "take": "You took the item up: it is being assessed, held by you.",
    "dismiss": "The item is dismissed with your reason.",
    "reopen": "The item is being assessed again.",
    "takeover": "You took the item over: it is held by you now.",
    "case": "The item is in the case.",
}


def item_json(item: Item) -> dict[str, Any]:
    return {
        "id": item.id,
        "state": item.state.value,
        "holder": item.holder,
        "case": item.case_id,
        "reason": item.reason,
        "received": item.received_at.isoformat(),
        "type": item.signal_type,
        "alert": item.alert,
        "municipality": item.municipality,
        "score": item.score,
        "steps": list(item.steps),
        "message": item.message,
    }


def _steps(workplace: Workplace) -> list[str]:
    registry = workplace.registry
    return sorted({s for t in registry.types() for s in registry.get(t).barrier_steps})


def routes(context: WebContext, workplace: Workplace, cases: CaseFiles) -> APIRouter:
    router = APIRouter()

    def queue(viewer: Viewer, values: dict[str, str]) -> tuple[list[Item], Any, str | None]:
        filters, before = queue_filters(values, _steps(workplace), workplace.registry.types())
        found = workplace.queue(viewer.user, filters, before=before, limit=PAGE)
        detail = {**filters.as_log(), "rows": len(found)}
        context.logged(viewer, "riec-queue", detail)
        older = None
        if len(found) == PAGE:
            last = found[-1]
            older = f"{last.received_at.isoformat()}|{last.id}"
        return found, filters, older

    @router.get("/riec", response_class=HTMLResponse)
    def queue_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, RIEC_ROLES)
        values = {k: v for k, v in request.query_params.items() if k in QUEUE_FIELDS}
        common: dict[str, Any] = {
            "values": values,
            "states": [s.value for s in ItemState],
            "municipalities": workplace.municipalities(viewer.user),
            "steps": _steps(workplace),
            "types": sorted(workplace.registry.types()),
        }
        try:
            found, _, older = queue(viewer, values)
        except FormError as error:
            return context.page(
                "riec_queue.html", viewer, 400, error=str(error), items=[], **common
            )
        more = None
        if older is not None:
            more = {**{k: v for k, v in values.items() if v and k != "before"}, "before": older}
        return context.page(
            "riec_queue.html", viewer, items=found, more=more, now=workplace.now(),
            reach=workplace.reach(viewer.user), **common,
        )  # fmt: skip

    @router.get("/api/riec/items")
    def queue_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, RIEC_ROLES)
        try:
            found, _, older = queue(viewer, dict(request.query_params))
        except FormError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"items": [item_json(i) for i in found], "before": older})

    _item_routes(router, context, workplace, cases)
    return router


def _item_routes(
    router: APIRouter, context: WebContext, workplace: Workplace, cases: CaseFiles
) -> None:
    def shown(request: Request, item_id: str) -> tuple[Viewer, Item | None]:
        viewer = context.viewer(request, RIEC_ROLES)
        try:
            item = workplace.item(viewer.user, item_id)
        except NotFoundError:
            item = None
        context.logged(viewer, "riec-item", {"item": item_id if item else "not found"})
        return viewer, item

    def item_page(
        viewer: Viewer, item: Item, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        return context.page(
            "riec_item.html", viewer, status_code, item=item,
            history=workplace.history(item.id), open_cases=[
                c for c in cases.listing(viewer.user)
                if c.state.value == "open" and (c.recipient, c.covenant_id) == (item.recipient, item.covenant_id)
            ],
            in_region=workplace.reach(viewer.user).in_region(item.municipality), **values,
        )  # fmt: skip

    @router.get("/riec/items/{item_id}", response_class=HTMLResponse)
    def item_view(request: Request, item_id: str) -> HTMLResponse:
        viewer, item = shown(request, item_id)
        if item is None:
            return context.page("not_found.html", viewer, 404, what="item")
        done = DONE.get(request.query_params.get("done", ""))
        return item_page(viewer, item, done=done)

    @router.get("/api/riec/items/{item_id}")
    def item_json_view(request: Request, item_id: str) -> JSONResponse:
        _, item = shown(request, item_id)
        if item is None:
            return JSONResponse({"error": "no such item in your scope"}, status_code=404)
        history = [
            {"at": e.at.isoformat(), "actor": e.actor, "step": e.step, "detail": e.detail}
            for e in workplace.history(item.id)
        ]
        return JSONResponse({**item_json(item), "history": history})

    @router.post("/riec/items/{item_id}/{step}", response_model=None)
    async def act(request: Request, item_id: str, step: str) -> Response:
        viewer = context.viewer(request, RIEC_ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        values = {k: field(form, k) for k in ("reason", "case", "title")}
        try:
            done = item_step(workplace, cases, viewer.user, item_id, step, values)
        except UnknownStepError:
            return context.page("not_found.html", viewer, 404, what="step")
        except NotFoundError as error:  # the path segment is typed by anyone: logged if an id
            logged = {"item": loggable_id("item", item_id), "refused": True}
            context.logged(viewer, f"riec-{step}", logged)
            return context.page("not_found.html", viewer, 404, what=_what(error), detail=str(error))
        except RiecError as error:
            logged = {"item": loggable_id("item", item_id), "refused": True}
            context.logged(viewer, f"riec-{step}", logged)
            try:
                item = workplace.item(viewer.user, item_id)
            except NotFoundError as missing:  # the item itself is out of reach
                return context.page("not_found.html", viewer, 404, what="item", detail=str(missing))
            return item_page(viewer, item, _status(error), error=str(error))
        context.logged(viewer, f"riec-{step}", {"item": item_id})
        if step == "case" and not values["case"] and done.case is not None:
            return RedirectResponse(f"/riec/cases/{done.case.id}?done=open", status_code=303)
        return RedirectResponse(f"/riec/items/{item_id}?done={step}", status_code=303)


def _what(error: NotFoundError) -> str:
    """Which thing was not found (the workplace's messages start "no item"/"no case")."""
    return "case" if str(error).startswith("no case") else "item"


def _status(error: RiecError) -> int:
    """409 for an item another analyst holds (take it over first), 400 otherwise."""
    return 409 if isinstance(error, HeldError) else 400
