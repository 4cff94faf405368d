"""Who is calling: a bearer token checked against the token store, then the rate limit.

Partners' tokens open ``POST /v1/signals`` only, recipients' tokens ``GET /v1/feed`` only. A
missing, unknown or revoked token is 401 (the answer never says which); a token of the wrong
kind is 403; a caller over its rate limit is 429 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.context import gateway_of
from services.gateway.problems import Problem, unauthenticated
from services.gateway.ratelimit import retry_after_header
from services.gateway.tokens import Kind, Principal

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token from `schakel gateway token issue` as `Authorization: Bearer …`",
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _authenticated(request: Request, credentials: Credentials, kind: Kind) -> Principal:
    if credentials is None:
        raise unauthenticated("send an API token as `Authorization: Bearer <token>`")
    gateway = gateway_of(request)
    principal = await asyncio.to_thread(gateway.tokens.authenticate, credentials.credentials)
    if principal is None:
        raise unauthenticated(
            "the API token is not valid (unknown, mistyped or revoked); ask the hub operator "
            "for a new one (schakel gateway token issue)"
        )
    if principal.kind != kind:
        raise Problem(
            403,
            "wrong_token_kind",
            f"this is a {principal.kind}'s token; this endpoint needs a {kind}'s token",
        )
    wait = gateway.limiter.take(f"{principal.kind}:{principal.name}")
    if wait is not None:
        gateway.metrics.limited(principal.kind, principal.name)
        raise Problem(
            429,
            "rate_limited",
            f"more than {gateway.settings.rate:g} requests/s (burst {gateway.settings.burst}); "
            "slow down and retry after the Retry-After seconds",
            headers={"Retry-After": retry_after_header(wait)},
        )
    return principal


async def partner(request: Request, credentials: Credentials) -> Principal:
    return await _authenticated(request, credentials, "partner")


async def recipient(request: Request, credentials: Credentials) -> Principal:
    return await _authenticated(request, credentials, "recipient")


PartnerAuth = Annotated[Principal, Depends(partner)]
RecipientAuth = Annotated[Principal, Depends(recipient)]
