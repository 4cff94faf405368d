"""``schakel subscribe``: print a recipient's feed as JSON lines, without duplicates."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import OrderedDict
from typing import Annotated, Any

import orjson
import typer
from aiokafka import AIOKafkaConsumer

from services.broker.aborted import drop_ended_aborts
from services.broker.fetching import FEED_PATH_WAIT_MS, fetch_settings, hold_empty_fetches
from services.hub.state import client_settings
from services.router.topics import feed_topic, recipient_group

SEEN_LIMIT = 1_000_000
"""Exchange ids remembered for dropping duplicates (a re-delivery after a crash)."""


def subscribe_command(
    recipient: Annotated[str, typer.Option("--as", help="The recipient whose feed to read.")],
    from_beginning: Annotated[bool, typer.Option(help="Start at the oldest message.")] = False,
    follow: Annotated[bool, typer.Option(help="Keep waiting for new messages.")] = False,
    idle: Annotated[
        float, typer.Option(help="Without --follow: stop after this many idle seconds.")
    ] = 2.0,
) -> None:
    """Reads feed.<recipient> in the recipient's consumer group and commits what it printed,
    so the hub knows what was consumed (and re-delivers the rest if the broker loses data).
    Ctrl-C stops it after the current batch (exit 0)."""
    asyncio.run(_subscribe(recipient, from_beginning=from_beginning, follow=follow, idle=idle))


async def _subscribe(recipient: str, *, from_beginning: bool, follow: bool, idle: float) -> None:
    settings = client_settings()
    consumer = AIOKafkaConsumer(
        feed_topic(recipient),
        group_id=recipient_group(recipient),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",  # never a feed message of an open transaction
        session_timeout_ms=10_000,
        **fetch_settings(FEED_PATH_WAIT_MS),
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    hold_empty_fetches(consumer, FEED_PATH_WAIT_MS)
    drop_ended_aborts(consumer)  # noida lists aborts long ended
    seen: OrderedDict[str, None] = OrderedDict()
    out = sys.stdout.buffer
    stop = asyncio.Event()  # Ctrl-C or SIGTERM: stop after the current batch, committed
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _wait_for_assignment(consumer)
        if from_beginning:
            await consumer.seek_to_beginning()
        # without --follow: print what the feed holds now, then stop (new messages keep
        # arriving on a live hub, so "until idle" alone might never end)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        last = time.monotonic()
        while not stop.is_set() and (
            follow or (time.monotonic() - last < idle and not await _caught_up(consumer, ends))
        ):
            batch = await consumer.getmany(timeout_ms=300)
            if not batch:
                continue
            last = time.monotonic()
            for messages in batch.values():
                for message in messages:
                    exchange_id = _exchange_id(message.value)
                    if exchange_id in seen:
                        continue
                    seen[exchange_id] = None
                    if len(seen) > SEEN_LIMIT:
                        seen.popitem(last=False)
                    out.write((message.value or b"") + b"\n")
            out.flush()
            await consumer.commit()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await consumer.stop()


async def _wait_for_assignment(consumer: AIOKafkaConsumer, timeout: float = 30.0) -> None:
    """Join the group and get partitions, without consuming anything yet."""
    deadline = time.monotonic() + timeout
    while not consumer.assignment():
        if time.monotonic() > deadline:
            raise typer.BadParameter("no partitions assigned; is the hub running?")
        await asyncio.sleep(0.1)


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[Any, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def _exchange_id(value: bytes | None) -> str:
    try:
        return str(orjson.loads(value or b"{}").get("exchange_id", ""))
    except orjson.JSONDecodeError:
        return ""
