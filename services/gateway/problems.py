"""RFC 9457 problem details: one JSON object per thing that went wrong.

Every error answer of the gateway is ``application/problem+json`` with ``type`` (a stable URI
per kind of problem), ``title``, ``status`` and ``detail``; per-signal problems in a batch add
``index`` (position in the request) and ``signal_id`` (when it could be read) and ``code``
(the core's rejection code). Details never repeat input values beyond a well-formed signal id.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://schakel.example/problems/"
"""Problem type URIs; the fragment after the base is the problem code."""

_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Invalid signal",
    429: "Too many requests",
    503: "Service unavailable",
}


class Problem(Exception):  # noqa: N818 - raised as an answer, read as a noun
    """One problem; raised in a route it becomes the whole answer."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {
            "type": TYPE_BASE + self.code,
            "title": _TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extra,
        }

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.body(), status_code=self.status, headers=self.headers, media_type=PROBLEM_JSON
        )


def unauthenticated(detail: str) -> Problem:
    return Problem(401, "unauthenticated", detail, headers={"WWW-Authenticate": "Bearer"})
