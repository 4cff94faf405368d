"""``schakel publish``: validate signals locally, then send them to the partner's topic."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from aiokafka import AIOKafkaProducer

from services.cli.output import console
from services.config import Paths
from services.core.errors import SignalRejected
from services.core.schema_registry import SchemaRegistry
from services.core.signal import accept_bytes
from services.hub.state import client_settings
from services.router.topics import signals_topic


def publish_command(
    source: Annotated[Path, typer.Argument(help="JSON-lines file of signals, or - for stdin.")],
    partner: Annotated[str, typer.Option("--as", help="The partner publishing (its topic).")],
    validate: Annotated[
        bool, typer.Option(help="Check each signal before sending (--no-validate sends as is).")
    ] = True,
) -> None:
    """Send each valid signal to signals.<partner>; report each invalid line with its reason."""
    registry = SchemaRegistry.load(Paths.from_env().schemas)
    good: list[bytes] = []
    err = console(stderr=True)
    bad = 0
    for number, line in _lines(source):
        if not line.strip():
            continue
        if validate:
            try:
                accept_bytes(line, registry, expected_source=partner)
            except SignalRejected as exc:
                bad += 1
                err.print(f"line {number}: not sent: {exc}", markup=False)
                continue
        good.append(line.rstrip(b"\n"))
    asyncio.run(_send(partner, good))
    err.print(f"sent {len(good)} signal(s) to {signals_topic(partner)}; {bad} refused")
    if bad:
        raise typer.Exit(1)


async def _send(partner: str, values: list[bytes]) -> None:
    settings = client_settings()
    producer = AIOKafkaProducer(acks="all", linger_ms=5, **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        futures = [await producer.send(signals_topic(partner), value) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _lines(source: Path) -> Iterator[tuple[int, bytes]]:
    if str(source) == "-":
        yield from enumerate(sys.stdin.buffer, start=1)
        return
    try:
        with source.open("rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {source}: {exc.strerror}") from None
