"""The gateway's FastAPI app: routes, problem-details error answers, the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from services.gateway import routes_feed, routes_signals
from services.gateway.context import Gateway
from services.gateway.problems import Problem
from services.gateway.timing import RequestTimer
from services.metrics.http import probe_routes

API_VERSION = "1.0.0"
OPENAPI_URL = "/v1/openapi.json"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_gateway_app(gateway: Gateway, *, lifespan: Lifespan | None = None) -> FastAPI:
    """The app serving ``gateway``; ``lifespan`` starts and stops what it holds.

    Besides the API it serves ``/healthz`` and ``/readyz`` (no token needed: nothing they show
    names a person, a place or a token) and times every API request. ``/metrics`` is not
    served here, where partners connect: :func:`services.gateway.serve.serve` serves it on a
    listener of its own (``SCHAKEL_METRICS_PORT``) for Prometheus.
    """
    app = build_app(lifespan)
    app.state.gateway = gateway
    app.include_router(probe_routes(gateway.health))
    app.add_middleware(RequestTimer, metrics=gateway.metrics)
    return app


def build_app(lifespan: Lifespan | None = None) -> FastAPI:
    """Routes, error answers and the OpenAPI document, without a gateway to serve yet."""
    app = FastAPI(
        title="Schakel gateway",
        version=API_VERSION,
        description=(
            "HTTPS ingest of partners' signals and feed access for recipients without a Kafka "
            "client. Every error is RFC 9457 problem details. See docs/gateway.md."
        ),
        openapi_url=OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.include_router(routes_signals.router)
    app.include_router(routes_feed.router)
    app.add_exception_handler(Problem, _problem)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            envelope = routes_signals.envelope_schema()
            schemas.update(envelope.pop("$defs", {}))
            schemas["Envelope"] = envelope
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override
    return app


async def _problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
    return exc.response()


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    where = "; ".join(
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()[:5]
    )
    return Problem(400, "invalid_request", where or "the request is not valid").response()


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for it only
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return Problem(
        exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {})
    ).response()
