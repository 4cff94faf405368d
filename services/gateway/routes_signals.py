"""``POST /v1/signals``: one envelope or a JSON array of them, from a partner."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from services.core import strict_json
from services.core.envelope import Envelope, peek_signal_id
from services.core.errors import SignalRejected
from services.gateway.auth import PartnerAuth
from services.gateway.context import gateway_of
from services.gateway.ingest import Outcome
from services.gateway.models import Accepted, ProblemDetails
from services.gateway.problems import PROBLEM_JSON, Problem

router = APIRouter()

JSON_TYPES = (
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
)

_ENVELOPE_REF = {"$ref": "#/components/schemas/Envelope"}
_BODY = {
    "required": True,
    "content": {
        media: {"schema": {"oneOf": [_ENVELOPE_REF, {"type": "array", "items": _ENVELOPE_REF}]}}
        for media in JSON_TYPES
    },
}
_PROBLEM = {"model": ProblemDetails, "content": {PROBLEM_JSON: {}}}


@router.post(
    "/v1/signals",
    status_code=202,
    response_model=Accepted,
    summary="Publish signals",
    description=(
        "One CloudEvents envelope, or a JSON array of them. 202 lists the ids the broker "
        "acknowledged; each refused signal gets its own problem (with its index and id) while "
        "the good ones go through. Re-sending a signal with the same id and content is "
        "answered the same and produced once."
    ),
    responses={
        400: _PROBLEM,
        401: _PROBLEM,
        403: _PROBLEM,
        409: _PROBLEM,
        413: _PROBLEM,
        415: _PROBLEM,
        422: _PROBLEM,
        429: _PROBLEM,
        503: _PROBLEM,
    },
    openapi_extra={"requestBody": _BODY},
)
async def post_signals(request: Request, principal: PartnerAuth) -> JSONResponse:
    gateway = gateway_of(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise Problem(415, "unsupported_media_type", f"send JSON: Content-Type {JSON_TYPES[0]}")
    body = await _read_body(request, gateway.settings.max_body_bytes)
    try:
        # strict I-JSON: an item with a member twice or an inexact integer is refused alone
        single, items = strict_json.items(body, signal_id=peek_signal_id)
    except SignalRejected as exc:
        if exc.code == "unparseable":  # "not valid JSON (where and why)"
            raise Problem(400, "malformed_json", f"the body is {exc.message}") from None
        raise Problem(400, exc.code, f"the body is not JSON text: {exc.message}") from None
    if not items:
        raise Problem(400, "empty", "send one signal (a JSON object) or a non-empty array of them")
    if len(items) > gateway.settings.max_batch:
        raise Problem(
            413,
            "batch_too_large",
            f"{len(items)} signals in one request; send at most {gateway.settings.max_batch}",
        )
    outcome = await gateway.ingest.submit(principal.name, items)
    for counted in outcome.counted:
        gateway.metrics.signal(principal.name, counted.type, counted.result, counted.code)
    return _answer(outcome, single=single)


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = Problem(
        413, "body_too_large", f"the request body is over {limit} bytes; send smaller batches"
    )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:  # the body ended early (fuzz: an unhandled error per dropped client)
        raise Problem(
            400, "incomplete_body", "the connection closed before the whole body arrived"
        ) from None
    return b"".join(chunks)


def _answer(outcome: Outcome, *, single: bool) -> JSONResponse:
    if outcome.accepted or not outcome.rejected:
        return JSONResponse(
            {"accepted": outcome.accepted, "rejected": [p.body() for p in outcome.rejected]},
            status_code=202,
        )
    if single:
        [problem] = outcome.rejected
        if problem.status == 503:
            problem.headers["Retry-After"] = "1"
        return problem.response()
    statuses = {p.status for p in outcome.rejected}
    status = statuses.pop() if len(statuses) == 1 else 422
    return Problem(
        status,
        "batch_rejected",
        f"none of the {len(outcome.rejected)} signal(s) was accepted; see errors",
        headers={"Retry-After": "1"} if status == 503 else {},
        extra={"errors": [p.body() for p in outcome.rejected]},
    ).response()


def envelope_schema() -> dict[str, Any]:
    """The JSON Schema of an envelope, for the OpenAPI components."""
    return Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
