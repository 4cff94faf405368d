"""The client's root exception."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """The gateway refused a request for good (or kept failing past the retries).

    ``status`` is the HTTP status (None: no answer at all), ``problem`` the RFC 9457 problem
    details the gateway sent, if any.
    """

    def __init__(
        self, message: str, *, status: int | None = None, problem: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.problem = problem or {}
