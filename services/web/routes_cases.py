"""The RIEC analyst's case files — as pages and as JSON.

A case page shows the items bundled in it (as their feeds delivered them), the recipient's
own pseudonyms they carry, other items carrying one of those pseudonyms (candidates to add),
and the case's notes, decisions, re-identification requests and outcome. Steps are POSTs with
the session's CSRF token; each is an audit record (:mod:`services.riec.records`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from services.riec.cases import CaseFiles
from services.riec.model import OUTCOMES, Case, NotFoundError, RiecError
from services.web.context import Viewer, WebContext
from services.web.riec_ids import loggable_id
from services.web.riec_steps import UnknownStepError, case_step
from services.web.routes_auth import field
from services.web.routes_riec import RIEC_ROLES, item_json

DONE = {
    "open": "The case is open; the item is in it.",
    "note": "Your note is in the case file.",
    "decision": "Your decision is in the case file.",
    "reid": "The re-identification request is filed; a privacy officer of the covenant must "
    "approve it before you can reveal the value once (on the Re-identification page).",
    "outcome": "The outcome is recorded and the case is closed; the indicators count it.",
    "handover": "The case is handed over as a signal under the covenant; the router delivers "
    "and audits it like any other exchange.",
}


def case_json(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "title": case.title,
        "recipient": case.recipient,
        "covenant": case.covenant_id,
        "state": case.state.value,
        "opened_by": case.opened_by,
        "opened_at": case.opened_at.isoformat(),
        "keep_until": case.keep_until.isoformat(),
        "outcome": case.outcome,
    }


def routes(context: WebContext, cases: CaseFiles) -> APIRouter:
    router = APIRouter()

    @router.get("/riec/cases", response_class=HTMLResponse)
    def list_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, RIEC_ROLES)
        found = cases.listing(viewer.user)
        context.logged(viewer, "riec-cases", {"rows": len(found)})
        return context.page("riec_cases.html", viewer, cases=found)

    @router.get("/api/riec/cases")
    def list_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, RIEC_ROLES)
        found = cases.listing(viewer.user)
        context.logged(viewer, "riec-cases", {"rows": len(found)})
        return JSONResponse({"cases": [case_json(c) for c in found]})

    def shown(request: Request, case_id: str) -> tuple[Viewer, Case | None]:
        viewer = context.viewer(request, RIEC_ROLES)
        try:
            case = cases.get(viewer.user, case_id)
        except NotFoundError:
            case = None
        context.logged(viewer, "riec-case", {"case": case_id if case else "not found"})
        return viewer, case

    def case_page(
        viewer: Viewer, case: Case, status_code: int = 200, **values: Any
    ) -> HTMLResponse:
        bundled = cases.items(viewer.user, case.id)
        pseudonyms = sorted({p for i in bundled for p in i.pseudonyms})
        return context.page(
            "riec_case.html", viewer, status_code, case=case, items=bundled,
            pseudonyms=pseudonyms, candidates=cases.same_subject(viewer.user, case.id),
            entries=cases.entries(case.id), outcomes=list(OUTCOMES),
            measures=cases.measures if cases.handover is not None else (),
            staged=cases.staged_handovers(viewer.user, case.id), **values,
        )  # fmt: skip

    @router.get("/riec/cases/{case_id}", response_class=HTMLResponse)
    def case_view(request: Request, case_id: str) -> HTMLResponse:
        viewer, case = shown(request, case_id)
        if case is None:
            return context.page("not_found.html", viewer, 404, what="case")
        return case_page(viewer, case, done=DONE.get(request.query_params.get("done", "")))

    @router.get("/api/riec/cases/{case_id}")
    def case_json_view(request: Request, case_id: str) -> JSONResponse:
        viewer, case = shown(request, case_id)
        if case is None:
            return JSONResponse({"error": "no such case in your scope"}, status_code=404)
        entries = [
            {"at": e.at.isoformat(), "author": e.actor, "kind": e.step, "text": e.detail}
            for e in cases.entries(case.id)
        ]
        bundled = [item_json(i) for i in cases.items(viewer.user, case.id)]
        staged = [
            {"signal": s.signal_id, "measure": s.measure, "since": s.at.isoformat()}
            for s in cases.staged_handovers(viewer.user, case.id)
        ]
        return JSONResponse(
            {**case_json(case), "items": bundled, "entries": entries, "staged_handovers": staged}
        )

    @router.post("/riec/cases/{case_id}/{step}", response_model=None)
    async def act(request: Request, case_id: str, step: str) -> Response:
        viewer = context.viewer(request, RIEC_ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        user = viewer.user
        names = ("text", "pseudonym", "reason", "measure", "outcome")
        try:
            case_step(cases, user, case_id, step, {k: field(form, k) for k in names})
        except UnknownStepError:
            return context.page("not_found.html", viewer, 404, what="step")
        except NotFoundError as error:  # the path segment is typed by anyone: logged if an id
            logged = {"case": loggable_id("case", case_id), "refused": True}
            context.logged(viewer, f"riec-{step}", logged)
            return context.page("not_found.html", viewer, 404, what="case", detail=str(error))
        except RiecError as error:
            logged = {"case": loggable_id("case", case_id), "refused": True}
            context.logged(viewer, f"riec-{step}", logged)
            try:
                case = cases.get(user, case_id)
            except NotFoundError as missing:
                return context.page("not_found.html", viewer, 404, what="case", detail=str(missing))
            return case_page(viewer, case, 400, error=str(error))
        context.logged(viewer, f"riec-{step}", {"case": case_id})
        return RedirectResponse(f"/riec/cases/{case_id}?done={step}", status_code=303)

    return router
