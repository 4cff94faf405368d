"""``GET /v1/feed`` (pages, long-poll) and ``GET /v1/feed/events`` (server-sent events).

The feed read is always ``feed.<recipient>`` of the caller's own token; nothing in the request
can name another. Messages are the feed messages the router wrote, in partition and offset
order; the cursor says where the next read starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from services.gateway.auth import RecipientAuth
from services.gateway.context import Gateway, gateway_of
from services.gateway.cursor import decode_cursor, encode_cursor
from services.gateway.errors import GatewayError, UnknownTopic
from services.gateway.models import FeedPage, ProblemDetails
from services.gateway.ports import FeedBatch
from services.gateway.problems import PROBLEM_JSON, Problem
from services.router.topics import feed_topic, gateway_group

router = APIRouter()
log = logging.getLogger("schakel.gateway")

_PROBLEM = {"model": ProblemDetails, "content": {PROBLEM_JSON: {}}}
_ERRORS: dict[int | str, dict[str, Any]] = dict.fromkeys((400, 401, 403, 404, 429, 503), _PROBLEM)
HEARTBEAT_S = 15.0
"""A server-sent-events comment is sent at least this often, so proxies keep the stream."""

Cursor = Annotated[
    str | None, Query(max_length=4096, description="From the previous page; none: the beginning")
]


@router.get(
    "/v1/feed",
    response_model=FeedPage,
    summary="Read one's feed",
    description=(
        "Up to `limit` messages after `cursor`. With `wait`, an empty page is held open up to "
        "that many seconds until a message arrives (long-poll)."
    ),
    responses=_ERRORS,
)
async def get_feed(
    request: Request,
    principal: RecipientAuth,
    cursor: Cursor = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[float, Query(ge=0, le=30, description="Long-poll seconds")] = 0.0,
) -> JSONResponse:
    gateway = gateway_of(request)
    positions = decode_cursor(cursor)
    await _acknowledge(gateway, principal.name, positions)
    batch = await _read(
        gateway,
        principal.name,
        positions,
        limit=min(limit, gateway.settings.feed_limit),
        wait_s=min(wait, gateway.settings.feed_max_wait_s),
    )
    return JSONResponse(
        {
            "messages": [_message(r.value) for r in batch.records],
            "cursor": encode_cursor({**positions, **batch.positions}),
        }
    )


@router.get(
    "/v1/feed/events",
    summary="Follow one's feed as server-sent events",
    description=(
        "A `text/event-stream` of feed messages, each with its cursor as the event id; "
        "reconnect with `Last-Event-ID` (or `?cursor=`) to go on where it stopped. One "
        "response lasts at most a few minutes."
    ),
    responses={200: {"content": {"text/event-stream": {}}}, **_ERRORS},
    response_class=StreamingResponse,
)
async def get_feed_events(
    request: Request,
    principal: RecipientAuth,
    cursor: Cursor = None,
    last_event_id: Annotated[str | None, Header(max_length=4096)] = None,
) -> StreamingResponse:
    gateway = gateway_of(request)
    positions = decode_cursor(last_event_id or cursor)
    await _acknowledge(gateway, principal.name, positions)
    first = await _read(gateway, principal.name, positions, limit=100, wait_s=0.0)
    return StreamingResponse(
        _events(request, gateway, principal.name, positions, first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request, gateway: Gateway, recipient: str, positions: dict[int, int], batch: FeedBatch
) -> AsyncIterator[bytes]:
    """The event stream; when it ends — its time is up, the reader left, the server stops —
    what was handed to the connection is committed, as a reconnect with the last event id
    would have acknowledged it."""
    deadline = gateway.monotonic() + gateway.settings.stream_max_s
    delivered = dict(positions)
    count = 0
    try:
        yield b"retry: 1000\n\n"
        while True:
            for record in batch.records:
                positions[record.partition] = record.offset + 1
                data = orjson.dumps(_message(record.value)).decode()
                yield f"id: {encode_cursor(positions)}\nevent: message\ndata: {data}\n\n".encode()
                # resumed once the server wrote the event; let the loop notice a reader that
                # left (a write to its socket failed) before counting the event delivered, and
                # stop writing into a closed connection
                await anyio.sleep(0)
                if await request.is_disconnected():
                    return
                delivered[record.partition] = record.offset + 1
                count += 1
            for partition, after in batch.positions.items():
                # past transaction markers too: the next read need not fetch them again
                positions[partition] = max(positions.get(partition, 0), after)
            if not batch.records:
                yield b": keep-alive\n\n"
            remaining = deadline - gateway.monotonic()
            if remaining <= 0 or gateway.closing.closed or await request.is_disconnected():
                return
            try:
                next_batch = await _read_unless_closing(
                    gateway, feed_topic(recipient), positions, min(HEARTBEAT_S, remaining)
                )
            except GatewayError:
                return  # the client reconnects with its last event id
            if next_batch is None:
                return  # the server is stopping: end here, the client reconnects elsewhere
            batch = next_batch
    finally:
        if count:
            # a reader that left cancels this stream: commit what it got all the same
            with anyio.CancelScope(shield=True):
                await _acknowledge(gateway, recipient, delivered)
        log.info("a feed stream ended after %d message(s)", count)


async def _read_unless_closing(
    gateway: Gateway, topic: str, positions: dict[int, int], wait_s: float
) -> FeedBatch | None:
    """The next batch of the stream, or None as soon as the server is stopping."""
    read = asyncio.ensure_future(gateway.feed.read(topic, positions, limit=100, wait_s=wait_s))
    closing = asyncio.ensure_future(gateway.closing.wait())
    try:
        await asyncio.wait({read, closing}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closing.cancel()
        if not read.done():
            read.cancel()  # its consumer closes in its own (shielded) clean-up
            with anyio.CancelScope(shield=True):
                await asyncio.gather(read, return_exceptions=True)
    return None if read.cancelled() else read.result()


async def _acknowledge(gateway: Gateway, recipient: str, positions: dict[int, int]) -> None:
    """Asking for the page after a cursor acknowledges everything before it: commit it as the
    offsets of the recipient's gateway group, so the hub counts those messages consumed (and
    re-delivers only the rest after a broker lost its data). A failed commit does not fail the
    read."""
    try:
        await gateway.feed.acknowledge(feed_topic(recipient), gateway_group(recipient), positions)
    except GatewayError as exc:
        log.warning("feed of a recipient not acknowledged: %s", exc)


async def _read(
    gateway: Gateway, recipient: str, positions: dict[int, int], *, limit: int, wait_s: float
) -> FeedBatch:
    topic = feed_topic(recipient)
    try:
        return await gateway.feed.read(topic, positions, limit=limit, wait_s=wait_s)
    except UnknownTopic:
        raise Problem(
            404,
            "no_feed",
            f"there is no feed for {recipient} yet; a covenant rule must name it as a "
            "recipient (and the hub must have started with that covenant)",
        ) from None
    except GatewayError:
        raise Problem(
            503,
            "broker_unavailable",
            "the feed cannot be read now; retry later",
            headers={"Retry-After": "1"},
        ) from None


def _message(value: bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return {"unreadable": True}
