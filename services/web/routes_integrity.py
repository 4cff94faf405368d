"""The integrity page: the stored result of the last verification of the audit log, and a
button that runs a new one in the background.

Viewing never verifies (that re-reads the whole chain): ``GET /integrity`` shows the newest
finished run of :class:`~services.web.integrity.IntegrityRuns` — who asked, when, the outcome
and the records checked — and whether one is running. ``POST /integrity/verify`` (with the
session's CSRF token) starts one; the page refreshes itself while it runs. A verification runs
:func:`services.audit.verification.verify_store` — the one ``schakel audit verify`` and the
metrics run — over the whole store, with the witness's checkpoints and the public halves of
the hub's current and retired signing keys (BIO2 8.15 asks for periodic integrity checks; this
lets a privacy officer run one on demand).

Both the page and ``GET /api/integrity`` also say how far the audit index — the store a
verification reads — is behind the audit log on the broker (:mod:`services.web.index_lag`),
or that this is unknown and why: records the indexer has not written yet are not verified.
They also say how many audit records of RIEC workplace actions wait to be written to the audit
log, and since when (:func:`services.riec.audit_outbox.waiting`): the audit store refused them;
the actions stand and their records are written, under their own ids, once it takes them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import Engine

from services.audit.store import SqlAuditStore
from services.audit.verification import StoreVerifier
from services.audit.verify import Verification
from services.audit.witness import Witness
from services.core.keys import KeyStore
from services.riec import audit_outbox
from services.web.context import WebContext
from services.web.routes_auth import field
from services.web.users import ROLES

CSRF_HEADER = "x-csrf-token"
REFRESH_SECONDS = 2
"""How often the page reloads itself while a verification runs."""


def check(engine: Engine, keys: KeyStore, witness: Witness | None) -> Verification:
    """Verify the store on ``engine`` (read-only) as ``schakel audit verify`` does
    (:func:`~services.audit.verification.verify_store`): against the public signing keys of
    ``keys`` and the checkpoints of the database and the ``witness``."""
    return StoreVerifier(SqlAuditStore(engine), keys, witness)()


def routes(context: WebContext) -> APIRouter:
    router = APIRouter()
    runs = context.integrity

    @router.get("/integrity", response_class=HTMLResponse)
    def integrity_page(request: Request) -> HTMLResponse:
        viewer = context.viewer(request, ROLES)
        last, running = runs.last_finished(), runs.running()
        index = context.index_lag()
        context.logged(viewer, "integrity", {"run": last.id if last else None})
        return context.page(
            "integrity.html",
            viewer,
            last=last,
            running=running,
            refresh=REFRESH_SECONDS,
            index=index,
            waiting=audit_outbox.waiting(context.engine),
        )

    @router.post("/integrity/verify", response_model=None)
    async def integrity_run(request: Request) -> RedirectResponse:
        viewer = context.viewer(request, ROLES)
        context.check_csrf(viewer, field(await request.form(), "csrf"))
        run, started = runs.start(viewer.user.name)
        context.logged(viewer, "integrity-run", {"run": run.id, "started": started})
        return RedirectResponse("/integrity", status_code=303)

    @router.get("/api/integrity")
    def integrity_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, ROLES)
        last, running = runs.last_finished(), runs.running()
        index = context.index_lag()
        context.logged(viewer, "api/integrity", {"run": last.id if last else None})
        return JSONResponse(
            {
                "last": last.to_json() if last else None,
                "running": running.to_json() if running else None,
                "index": index.to_json(),
                "riec_audit_waiting": waiting_json(audit_outbox.waiting(context.engine)),
            }
        )

    @router.post("/api/integrity/verify")
    def integrity_run_json(request: Request) -> JSONResponse:
        viewer = context.viewer(request, ROLES)
        context.check_csrf(viewer, request.headers.get(CSRF_HEADER))
        run, started = runs.start(viewer.user.name)
        context.logged(viewer, "api/integrity-run", {"run": run.id, "started": started})
        return JSONResponse({"run": run.to_json(), "started": started}, status_code=202)

    return router


def waiting_json(waiting: audit_outbox.Waiting) -> dict[str, object]:
    return {
        "records": waiting.count,
        "oldest": None if waiting.oldest is None else waiting.oldest.isoformat(),
    }
