"""The RIEC workplace's steps as JSON: the same steps as the pages' forms
(:mod:`services.web.riec_steps`), the same roles and scope, the same audit.

``POST /api/riec/items/{id}/{step}`` and ``POST /api/riec/cases/{id}/{step}`` take a JSON object
of string fields and the session's CSRF token in the ``x-csrf-token`` header, like the other
JSON POSTs. An item or case outside the user's reach answers 404 like a missing one; an item
another analyst holds 409 (take it over first); any other refusal 400 with the reason.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.riec.cases import CaseFiles
from services.riec.model import HeldError, NotFoundError, RiecError
from services.web.context import Viewer, WebContext
from services.web.riec_ids import loggable_id
from services.web.riec_steps import Done, UnknownStepError, case_step, item_step
from services.web.routes_cases import case_json
from services.web.routes_riec import RIEC_ROLES, item_json

CSRF_HEADER = "x-csrf-token"
MAX_FIELD = 4000


class BodyError(Exception):
    """The request body is not a JSON object of strings."""


async def _values(request: Request) -> dict[str, str]:
    if not await request.body():
        return {}  # a step without fields (take) may come without a body
    try:
        body = await request.json()
    except ValueError:
        raise BodyError("send a JSON object of string fields") from None
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise BodyError("send a JSON object of string fields")
    return {str(k): v[:MAX_FIELD] for k, v in body.items()}


def _done_json(done: Done) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if done.item is not None:
        found["item"] = item_json(done.item)
    if done.case is not None:
        found["case"] = case_json(done.case)
    if done.reference:
        found.update(done.reference)
    return found


def routes(context: WebContext, cases: CaseFiles) -> APIRouter:
    router = APIRouter()
    workplace = cases.workplace

    async def run(request: Request, kind: str, key: str, step: str) -> JSONResponse:
        viewer: Viewer = context.viewer(request, RIEC_ROLES)
        context.check_csrf(viewer, request.headers.get(CSRF_HEADER))
        route = f"api/riec-{step}"
        logged_key = loggable_id(kind, key)  # the path segment is typed by anyone
        try:
            values = await _values(request)
            if kind == "item":
                done = item_step(workplace, cases, viewer.user, key, step, values)
            else:
                done = case_step(cases, viewer.user, key, step, values)
        except BodyError as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        except UnknownStepError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except NotFoundError as error:
            context.logged(viewer, route, {kind: logged_key, "refused": True})
            return JSONResponse({"error": str(error)}, status_code=404)
        except RiecError as error:
            context.logged(viewer, route, {kind: logged_key, "refused": True})
            status = 409 if isinstance(error, HeldError) else 400
            return JSONResponse({"error": str(error)}, status_code=status)
        context.logged(viewer, route, {kind: logged_key})
        return JSONResponse(_done_json(done))

    @router.post("/api/riec/items/{item_id}/{step}")
    async def item_action(request: Request, item_id: str, step: str) -> JSONResponse:
        return await run(request, "item", item_id, step)

    @router.post("/api/riec/cases/{case_id}/{step}")
    async def case_action(request: Request, case_id: str, step: str) -> JSONResponse:
        return await run(request, "case", case_id, step)

    return router
