"""Exchange search, record detail and the per-recipient view — as pages and as JSON.

Only privacy officers (within their scope) and admins see individual records. Every request
that returns records is written to the access log with its filters.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

from services.audit import queries
from services.config import Paths
from services.web.context import Viewer, WebContext
from services.web.covenant_notes import illustrations
from services.web.forms import (
    RESULTS,
    FormError,
    SearchForm,
    cursor,
    period,
    search_form,
    text,
)
from services.web.users import ADMIN, COVENANT_MANAGER, PRIVACY_OFFICER, RIEC_ANALYST, ROLES

RECORD_ROLES = (PRIVACY_OFFICER, ADMIN)
PAGE_SIZE = 50


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _search(context: WebContext, viewer: Viewer, form: SearchForm) -> queries.Page:
    page = queries.search(
        context.engine, form.filters, viewer.user.scope, cursor=form.cursor, limit=PAGE_SIZE
    )
    detail: dict[str, Any] = {**form.filters.as_log(), "rows": len(page.entries)}
    if form.cursor is not None:
        detail["cursor"] = form.cursor
    context.logged(viewer, "exchanges", detail)
    return page


def _illustration(paths: Paths, body: dict[str, Any]) -> str | None:
    """The illustration note of the covenant version a record cites, if it is one."""
    cited = body.get("covenant")
    if not isinstance(cited, dict):
        return None
    return illustrations(paths).get(f"{cited.get('id')}@{cited.get('version')}")


def routes(context: WebContext, paths: Paths | None = None) -> APIRouter:
    router = APIRouter()

    @router.get("/", response_model=None)
    def home(request: Request) -> RedirectResponse:
        viewer = context.viewer(request, ROLES)
        target = {COVENANT_MANAGER: "/report", RIEC_ANALYST: "/riec"}.get(
            viewer.user.role, "/exchanges"
        )
        return RedirectResponse(target, status_code=303)

    @router.get("/exchanges", response_class=HTMLResponse)
    def exchanges(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, RECORD_ROLES)
        values = _query(request)
        try:
            form = search_form(values)
        except FormError as error:
            return context.page(
                "exchanges.html", viewer, 400, form=None, error=str(error), results=RESULTS
            )
        page = _search(context, viewer, form)
        more = {**{k: v for k, v in form.values.items() if v}, "cursor": str(page.next_cursor)}
        return context.page(
            "exchanges.html", viewer, form=form, page=page, more=more, results=RESULTS
        )

    @router.get("/api/exchanges")
    def exchanges_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, RECORD_ROLES)
        try:
            form = search_form(_query(request))
        except FormError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        page = _search(context, viewer, form)
        return JSONResponse(
            {"records": [e.to_json() for e in page.entries], "next_cursor": page.next_cursor}
        )

    def _detail(request: Request, reference: str) -> tuple[Viewer, queries.Detail | None]:
        viewer = context.viewer(request, RECORD_ROLES)
        key: str | int = (
            int(reference)
            if reference.isascii() and reference.isdigit() and len(reference) < 19
            else reference
        )
        found = queries.record(context.engine, key, viewer.user.scope)
        shown = found.entry.record_id if found else "not found"
        context.logged(viewer, "record", {"record": shown})
        return viewer, found

    @router.get("/exchanges/{reference}", response_class=HTMLResponse)
    def record_page(request: Request, reference: str) -> HTMLResponse:
        viewer, found = _detail(request, reference)
        if found is None:
            return context.page("not_found.html", viewer, 404, what="record")
        return context.page(
            "record.html",
            viewer,
            detail=found,
            illustration=_illustration(paths or Paths.from_env(), found.entry.body),
        )

    @router.get("/api/exchanges/{reference}")
    def record_json(request: Request, reference: str) -> JSONResponse:
        _, found = _detail(request, reference)
        if found is None:
            return JSONResponse({"error": "no such record"}, status_code=404)
        return JSONResponse(
            {**found.entry.to_json(), "prev_seq": found.prev_seq, "chain_hash": found.chain_hash}
        )

    def _recipient(request: Request) -> tuple[Viewer, str | None, queries.Page | None]:
        viewer = context.viewer(request, RECORD_ROLES)
        values = _query(request)
        recipient = text(values, "recipient")
        if recipient is None:
            return viewer, None, None
        page = queries.recipient_view(
            context.engine,
            recipient,
            period(values),
            viewer.user.scope,
            cursor=cursor(values),
            limit=PAGE_SIZE,
        )
        detail = {"recipient": recipient, "rows": len(page.entries)}
        context.logged(viewer, "recipient", detail)
        return viewer, recipient, page

    @router.get("/recipients", response_class=HTMLResponse)
    def recipient_page(request: Request) -> HTMLResponse:
        try:
            viewer, recipient, page = _recipient(request)
        except FormError as error:
            viewer = context.viewer(request, RECORD_ROLES)
            return context.page("recipient.html", viewer, 400, error=str(error), values={})
        values = _query(request)
        more = {**values, "cursor": str(page.next_cursor) if page else ""}
        return context.page(
            "recipient.html", viewer, recipient=recipient, page=page, values=values, more=more
        )

    @router.get("/api/recipients")
    def recipient_json(request: Request) -> JSONResponse:
        try:
            _, recipient, page = _recipient(request)
        except FormError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        if page is None:
            return JSONResponse({"error": "recipient is required"}, status_code=400)
        return JSONResponse(
            {
                "recipient": recipient,
                "records": [e.to_json() for e in page.entries],
                "next_cursor": page.next_cursor,
            }
        )

    return router
