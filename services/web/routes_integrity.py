"""The integrity page: verify the audit log's hash chain and signed checkpoints now.

Runs :func:`services.audit.verify.verify` over the whole store with the public halves of the
hub's current and retired signing keys, and shows the outcome (BIO2 8.15 asks for periodic
integrity checks; this lets a privacy officer run one on demand).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from services.audit.reading import chain_records
from services.audit.store import SqlAuditStore
from services.audit.verify import Verification, verify
from services.web.context import WebContext
from services.web.users import ROLES


def public_keys(context: WebContext) -> dict[str, bytes]:
    """Key id -> raw public key of the current signing key and, if the store keeps them, the
    retired ones."""
    keys: dict[str, bytes] = {}
    retired = getattr(context.keys, "retired_signing_keys", None)
    if callable(retired):
        for old in retired():
            keys[old.key_id] = old.public_bytes
    current = context.keys.signing_key()
    keys[current.key_id] = current.public_key_bytes()
    return keys


def check(context: WebContext) -> Verification:
    """Verify the store on the context's engine (read-only)."""
    store = SqlAuditStore(context.engine)
    return verify(chain_records(store), store.checkpoints(), public_keys(context))


def routes(context: WebContext) -> APIRouter:
    router = APIRouter()

    @router.get("/integrity", response_class=HTMLResponse)
    def integrity_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, ROLES)
        result = check(context)
        context.logged(viewer, "integrity", {"ok": result.ok, "records": result.records})
        return context.page("integrity.html", viewer, result=result)

    @router.get("/api/integrity")
    def integrity_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, ROLES)
        result = check(context)
        context.logged(viewer, "api/integrity", {"ok": result.ok, "records": result.records})
        return JSONResponse(result.to_json())

    return router
