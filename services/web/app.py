"""The web workplace's FastAPI application, built from its dependencies.

:func:`create_web_app` takes the database engine (the audit tables and the web tables live in
the same database), the key store (pseudonym keys for subject look-ups, public signing keys
for the integrity check) and :class:`~services.web.context.WebSettings` — and, to serve the
re-identification pages, a :class:`~services.reid.workflow.Reidentification` built by the
caller on the same engine; nothing is read from
module-level state, so tests and ``schakel up`` each build their own app.

Every response carries headers that keep pages out of caches and frames and allow no script
or style from elsewhere; pages without a session redirect to the sign-in page, JSON answers
401; a wrong role or a missing CSRF token gives 403. An unknown path answers 404 with the
app's "not found" page, or with a JSON error under ``/api/``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.audit.model import AuditStore
from services.audit.witness import Witness
from services.core.keys import KeyStore
from services.metrics.http import health_routes
from services.metrics.riec import RiecAuditMetrics
from services.metrics.settings import MetricsSettings
from services.metrics.wiring import web_observability
from services.reid.workflow import Reidentification
from services.riec import audit_outbox
from services.riec.cases import CaseFiles
from services.riec.plan import BarrierPlan
from services.web import (
    routes_auth,
    routes_barriers,
    routes_cases,
    routes_coverage,
    routes_exchanges,
    routes_indicators,
    routes_integrity,
    routes_plan,
    routes_reid,
    routes_report,
    routes_riec,
    routes_riec_api,
    routes_subjects,
)
from services.web.context import (
    STATIC,
    CsrfError,
    ForbiddenError,
    NotSignedInError,
    WebContext,
    WebSettings,
)
from services.web.index_lag import IndexLagSource, no_kafka
from services.web.sessions import Clock, utc_now

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def waiting_audit(engine: Engine) -> Callable[[], tuple[int, datetime | None]]:
    """How many RIEC workplace audit records wait for the audit store, and since when."""

    def read() -> tuple[int, datetime | None]:
        found = audit_outbox.waiting(engine)
        return found.count, found.oldest

    return read


def create_web_app(
    engine: Engine,
    keys: KeyStore,
    settings: WebSettings,
    reid: Reidentification | None = None,
    riec: CaseFiles | None = None,
    plan: BarrierPlan | None = None,
    *,
    clock: Clock = utc_now,
    metrics: MetricsSettings | None = None,
    witness: Witness | None = None,
    audit: AuditStore | None = None,
    index_lag: IndexLagSource = no_kafka,
) -> FastAPI:
    """The web workplace on ``engine``; creates the web tables if they are missing and marks
    integrity runs a previous process left unfinished as interrupted.

    With ``reid`` (its engine must be ``engine``) the ``/reid`` pages are served too and
    their tables created if missing; with ``riec`` (the case files of a RIEC workplace on
    ``engine``) the RIEC analyst's ``/riec`` pages; with ``plan`` the joint barrier plan
    (``/plan``). ``clock`` dates sessions and integrity runs.
    ``metrics`` (default: from the environment) sets how often ``/metrics`` has the audit
    log verified. The integrity page, its JSON API and ``/metrics`` run one verification,
    the one ``schakel audit verify`` runs, with the checkpoints of ``witness`` (the hub's, as
    :func:`services.web.serve.serve` passes it) besides the database's. Refused sign-ins
    are written to ``audit`` (default: the re-identification workflow's store, else a store on
    ``engine`` that chains records without signing checkpoints). The integrity page and its
    JSON API say how far the audit index is behind the audit log as ``index_lag`` reports it
    (:mod:`services.web.index_lag`; by default: unknown, no Kafka settings).
    """
    check = partial(routes_integrity.check, engine, keys, witness)
    if audit is None and reid is not None:
        audit = reid.audit
    context = WebContext(engine, keys, settings, check, clock, audit, index_lag)
    context.users.create_schema()
    context.integrity.recover()
    app = FastAPI(title="Schakel privacy officer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.context = context
    for module in (
        routes_auth,
        routes_exchanges,
        routes_report,
        routes_subjects,
        routes_integrity,
        routes_coverage,
        routes_indicators,
        routes_barriers,
    ):
        app.include_router(module.routes(context))
    # /metrics, /healthz, /readyz (no sign-in; no identifiers); verification every N s
    registry, health = web_observability(engine, check, metrics or MetricsSettings.from_env())
    app.state.metrics_registry = registry
    app.include_router(health_routes(registry, health))
    if reid is not None:
        if reid.engine is not engine:
            raise ValueError("the re-identification workflow must use the web app's engine")
        reid.create_schema()
        context.templates.globals["reid_enabled"] = True
        app.include_router(routes_reid.routes(context, reid))
    if riec is not None:
        if riec.workplace.engine is not engine:
            raise ValueError("the RIEC workplace must use the web app's engine")
        riec.workplace.create_schema()
        # the workplace's audit records that wait for the audit store, and refused flushes
        riec.workplace.flush_failed = RiecAuditMetrics(registry, waiting_audit(engine)).failed
        context.templates.globals["riec_enabled"] = True
        app.include_router(routes_riec.routes(context, riec.workplace, riec))
        app.include_router(routes_cases.routes(context, riec))
        app.include_router(routes_riec_api.routes(context, riec))
    if plan is not None:
        context.templates.globals["plan_enabled"] = True
        app.include_router(routes_plan.routes(context, plan))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(NotSignedInError)
    async def not_signed_in(request: Request, _: Exception) -> Response:
        if _is_api(request):
            return JSONResponse({"error": "sign in first"}, status_code=401)
        return RedirectResponse("/sign-in", status_code=303)

    @app.exception_handler(ForbiddenError)
    async def forbidden(request: Request, _: Exception) -> Response:
        if _is_api(request):
            return JSONResponse({"error": "your role may not use this"}, status_code=403)
        return context.page("forbidden.html", None, 403, why="Your role may not use this page.")

    @app.exception_handler(CsrfError)
    async def bad_csrf(request: Request, _: Exception) -> Response:
        if _is_api(request):
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        return context.page(
            "forbidden.html", None, 403, why="The form was stale or not sent from this site."
        )

    @app.exception_handler(StarletteHTTPException)
    async def no_such_page(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code != 404:
            return await http_exception_handler(request, error)
        if _is_api(request):
            return JSONResponse({"error": "no such API path"}, status_code=404)
        return context.page("not_found.html", context.signed_in(request), 404, what="page")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return app


__all__ = ["WebSettings", "create_web_app"]
