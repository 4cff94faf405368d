"""Subject look-up (AVG art. 15 access requests): kind + identifier in, every record about
that subject out, oldest first — to whom, when, under which article, which fields.

The identifier is normalised and turned into its hub-internal pseudonym under every key
version (:meth:`~services.core.pseudonyms.Pseudonymiser.all_pseudonyms`), since records made
before a key rotation carry the older pseudonym. The identifier arrives in a POST body (never
in a URL, so it stays out of server and proxy logs), is not stored, not echoed back and not
logged: the access log gets only the kind and how many pseudonyms were searched.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from services.audit import queries
from services.core.errors import SchakelError
from services.core.identifiers import IDENTIFIER_KINDS, normalise
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.web.context import Viewer, WebContext
from services.web.routes_auth import field
from services.web.users import ADMIN, PRIVACY_OFFICER

SUBJECT_ROLES = (PRIVACY_OFFICER, ADMIN)
KINDS = tuple(sorted(IDENTIFIER_KINDS))
CSRF_HEADER = "x-csrf-token"


class SubjectLookupError(ValueError):
    """The kind or identifier cannot be used; the message never contains the identifier."""


def lookup(context: WebContext, viewer: Viewer, kind: str, identifier: str) -> list[queries.Entry]:
    """The records about one identifier that ``viewer`` may see, logged without it."""
    if kind not in IDENTIFIER_KINDS:
        raise SubjectLookupError(f"kind must be one of {', '.join(KINDS)}")
    try:
        canonical = normalise(kind, identifier)
    except (SchakelError, ValueError):
        raise SubjectLookupError(f"this is not a valid {kind}") from None
    pseudonyms = Pseudonymiser(context.keys).all_pseudonyms(INTERNAL, kind, canonical)
    entries = queries.subject_lookup(context.engine, pseudonyms, viewer.user.scope)
    context.logged(
        viewer, "subject", {"kind": kind, "pseudonyms": len(pseudonyms), "rows": len(entries)}
    )
    return entries


def disclosure(entry: queries.Entry) -> dict[str, Any]:
    """What an access-request answer lists for one record."""
    body = entry.body
    covenant = body.get("covenant") or {}
    return {
        "record_id": entry.record_id,
        "time": entry.timestamp.isoformat(),
        "result": entry.result,
        "recipient": entry.recipient,
        "source": entry.origin,
        "signal_type": entry.signal_type,
        "covenant": covenant.get("id"),
        "rule": covenant.get("rule"),
        "article": covenant.get("article"),
        "fields": body.get("fields") or {},
    }


def routes(context: WebContext) -> APIRouter:
    router = APIRouter()

    @router.get("/subjects", response_class=HTMLResponse)
    def subject_form(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, SUBJECT_ROLES)
        return context.page("subjects.html", viewer, kinds=KINDS, kind=None, rows=None)

    @router.post("/subjects", response_class=HTMLResponse)
    async def subject_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, SUBJECT_ROLES)
        form = await request.form()
        context.check_csrf(viewer, field(form, "csrf"))
        kind = field(form, "kind")
        try:
            entries = lookup(context, viewer, kind, field(form, "identifier"))
        except SubjectLookupError as error:
            return context.page(
                "subjects.html", viewer, 400, kinds=KINDS, kind=kind, rows=None, error=str(error)
            )
        rows = [{**disclosure(entry), "timestamp": entry.timestamp} for entry in entries]
        return context.page("subjects.html", viewer, kinds=KINDS, kind=kind, rows=rows)

    @router.post("/api/subjects")
    async def subject_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, SUBJECT_ROLES)
        context.check_csrf(viewer, request.headers.get(CSRF_HEADER))
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        kind, identifier = body.get("kind"), body.get("identifier")
        if not isinstance(kind, str) or not isinstance(identifier, str):
            return JSONResponse({"error": "kind and identifier are required"}, status_code=400)
        try:
            entries = lookup(context, viewer, kind, identifier)
        except SubjectLookupError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"kind": kind, "records": [disclosure(e) for e in entries]})

    return router
