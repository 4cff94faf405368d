"""Reading a recipient's feed through the gateway, page by page, with long-polling.

:meth:`FeedClient.page` returns the messages after the client's cursor and moves the cursor
on; keep :attr:`FeedClient.cursor` (e.g. in a file) to resume after a restart.
:meth:`FeedClient.follow` yields messages as they come, long-polling, for a bounded number of
pages. Requests are retried like publishing (:mod:`services.client.retry`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
import orjson

from services.client.errors import ClientError
from services.client.retry import RetryPolicy, send


@dataclass(frozen=True)
class FeedPage:
    messages: list[dict[str, Any]]
    cursor: str


class FeedClient:
    """A recipient's connection to the gateway at ``base_url`` with its API ``token``."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        cursor: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.cursor = cursor
        self._retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def page(self, *, limit: int = 100, wait: float = 0.0) -> FeedPage:
        """The next up to ``limit`` messages; waits up to ``wait`` s for one if there is none."""
        params: dict[str, Any] = {"limit": limit, "wait": wait}
        if self.cursor:
            params["cursor"] = self.cursor
        response = send(self._http, self._retry, "GET", "/v1/feed", params=params)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            detail = body.get("detail", response.reason_phrase) if isinstance(body, dict) else ""
            raise ClientError(
                f"the gateway refused the feed request: HTTP {response.status_code}: {detail}",
                status=response.status_code,
                problem=body if isinstance(body, dict) else None,
            )
        page = FeedPage(list(body["messages"]), str(body["cursor"]))
        self.cursor = page.cursor
        return page

    def follow(
        self, *, max_pages: int, wait: float = 25.0, limit: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Messages as they arrive, for at most ``max_pages`` requests (loop around it to
        follow for ever)."""
        for _ in range(max_pages):
            yield from self.page(limit=limit, wait=wait).messages

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
