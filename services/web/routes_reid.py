"""Re-identification pages: file a request, approve or reject it (four eyes), reveal once.

The workflow and its rules live in :class:`~services.reid.workflow.Reidentification`; these
routes only collect form fields, call it and show its answer. Every action is a POST with the
session's CSRF token; a step that succeeded redirects to the list, which confirms it. The value behind a pseudonym appears only in the body of the single
reveal response (served ``Cache-Control: no-store`` like every page) — never in a URL, a
redirect, an error message or the access log, which records each view and action with the
request id and outcome only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.reid.model import ReidError, State, UnknownRequestError
from services.reid.model import Request as ReidRequest
from services.reid.workflow import Reidentification, may_decide
from services.web.context import Viewer, WebContext
from services.web.routes_auth import field
from services.web.users import ADMIN, PRIVACY_OFFICER, RIEC_ANALYST

REID_ROLES = (PRIVACY_OFFICER, ADMIN, RIEC_ANALYST)


def visible(flow: Reidentification, viewer: Viewer) -> list[ReidRequest]:
    """The requests ``viewer`` filed, decided or may decide, newest first."""
    name = viewer.user.name
    return [
        found
        for found in flow.listing()
        if name in (found.requester, found.decided_by) or may_decide(viewer.user, found.covenant_id)
    ]


def _row(flow: Reidentification, viewer: Viewer, found: ReidRequest) -> dict[str, Any]:
    """What the list shows of one request, and which buttons ``viewer`` gets."""
    status = found.status(flow.now())
    mine = found.requester == viewer.user.name
    return {
        "request": found,
        "status": status,
        "may_decide": status == "requested"
        and not mine
        and may_decide(viewer.user, found.covenant_id),
        "may_reveal": status == "approved" and mine,
    }


def confirmation(flow: Reidentification, viewer: Viewer, asked: Mapping[str, str]) -> str | None:
    """What the list page confirms after ``viewer`` filed, approved or rejected a request —
    named by the ``filed``, ``approved`` or ``rejected`` query parameter the step redirected
    with, and only if the request shows that ``viewer`` did take that step."""
    step = next((s for s in ("filed", "approved", "rejected") if asked.get(s)), None)
    if step is None:
        return None
    try:
        found = flow.get(asked[step])
    except ReidError:
        return None
    name, until = viewer.user.name, found.expires_at.strftime("%Y-%m-%d %H:%M")
    if step == "filed" and found.requester == name:
        return (
            f"Request {found.id} is filed. A second authorised user (a privacy officer of "
            f"{found.covenant_id}, or an admin) must approve it before {until} UTC; then you "
            "can reveal the value once."
        )
    if step == "approved" and found.decided_by == name and found.state != State.REJECTED:
        return (
            f"Request {found.id} is approved. {found.requester} can reveal the value once, "
            f"until {until} UTC."
        )
    if step == "rejected" and found.decided_by == name and found.state == State.REJECTED:
        return f"Request {found.id} is rejected; {found.requester} sees your reason."
    return None


def routes(context: WebContext, flow: Reidentification) -> APIRouter:
    """The ``/reid`` pages on ``flow``."""
    router = APIRouter()

    def listing(viewer: Viewer, status_code: int = 200, **values: Any) -> HTMLResponse:
        rows = [_row(flow, viewer, found) for found in visible(flow, viewer)]
        context.logged(viewer, "reid-list", {"rows": len(rows)})
        form = values.pop("form", {})
        return context.page("reid.html", viewer, status_code, rows=rows, form=form, **values)

    def refused(viewer: Viewer, action: str, request_id: str, error: ReidError) -> HTMLResponse:
        context.logged(viewer, f"reid-{action}", {"id": request_id, "refused": True})
        status_code = 404 if isinstance(error, UnknownRequestError) else 400
        return listing(viewer, status_code, error=str(error))

    @router.get("/reid", response_class=HTMLResponse)
    def reid_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, REID_ROLES)
        return listing(viewer, done=confirmation(flow, viewer, request.query_params))

    @router.post("/reid", response_model=None)
    async def file_request(request: Request) -> Response:
        viewer = context.viewer(request, REID_ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        typed = {
            name: field(form, name)
            for name in ("recipient", "covenant", "pseudonym", "purpose", "case")
        }
        detail = {"recipient": typed["recipient"], "covenant": typed["covenant"]}
        try:
            made = flow.request(
                viewer.user,
                recipient=typed["recipient"],
                covenant_id=typed["covenant"],
                pseudonym=typed["pseudonym"],
                purpose=typed["purpose"],
                case_ref=typed["case"],
            )
        except ReidError as error:
            context.logged(viewer, "reid-request", {**detail, "refused": True})
            return listing(viewer, 400, error=str(error), form=typed)
        context.logged(viewer, "reid-request", {**detail, "id": made.id})
        return RedirectResponse(f"/reid?filed={made.id}", status_code=303)

    @router.post("/reid/{request_id}/approve", response_model=None)
    async def approve(request: Request, request_id: str) -> Response:
        viewer = context.viewer(request, REID_ROLES)
        context.check_csrf(viewer, field(await request.form(), "csrf"))
        try:
            decided = flow.approve(request_id, viewer.user)
        except ReidError as error:
            return refused(viewer, "approve", request_id, error)
        context.logged(viewer, "reid-approve", {"id": request_id})
        return RedirectResponse(f"/reid?approved={decided.id}", status_code=303)

    @router.post("/reid/{request_id}/reject", response_model=None)
    async def reject(request: Request, request_id: str) -> Response:
        viewer = context.viewer(request, REID_ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        try:
            decided = flow.reject(request_id, viewer.user, field(form, "reason"))
        except ReidError as error:
            return refused(viewer, "reject", request_id, error)
        context.logged(viewer, "reid-reject", {"id": request_id})
        return RedirectResponse(f"/reid?rejected={decided.id}", status_code=303)

    @router.post("/reid/{request_id}/reveal", response_class=HTMLResponse)
    async def reveal(request: Request, request_id: str) -> HTMLResponse:
        viewer = context.viewer(request, REID_ROLES)
        context.check_csrf(viewer, field(await request.form(), "csrf"))
        try:
            revealed = flow.reveal(request_id, viewer.user)
        except ReidError as error:
            return refused(viewer, "reveal", request_id, error)
        context.logged(viewer, "reid-reveal", {"id": request_id, "kind": revealed.kind})
        return context.page("reid_reveal.html", viewer, revealed=revealed)

    return router
