"""Shared pieces of the router tests: a policy source on the shipped covenants, traffic, and
the audit indexer running in-process beside a router on a log-first path."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from services.audit.model import AuditStore
from services.broker.settings import KafkaSettings
from services.config import ROOT, Loaded, Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.demo import generate
from services.indexer.loop import IndexerLoop
from services.keys.testing import MemoryKeyStore
from services.router.policy_source import PolicySource

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
COVENANTS = [ROOT / "covenants"]


def policy_source(
    covenants: list[Path] | None = None, keys: MemoryKeyStore | None = None, *, demo: bool = True
) -> PolicySource:
    """The router's policy source; in demo mode (the default) TEST keys sign the traffic."""
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(keys or MemoryKeyStore.for_tests())
    chosen = covenants or COVENANTS

    def load(today: date) -> Loaded:
        return load_policy(
            chosen, paths.schemas, paths.reference, pseudonymiser, today=today, demo=demo
        )

    return PolicySource(load, chosen, today=NOW.date)


def traffic(count: int, seed: int = 11) -> list[dict[str, object]]:
    return generate(count, seed=seed, start=datetime(2026, 9, 1, tzinfo=UTC)).signals


def lines(signals: list[dict[str, object]]) -> list[bytes]:
    return [orjson.dumps(s) for s in signals]


@contextlib.asynccontextmanager
async def indexer_running(settings: KafkaSettings, store: AuditStore) -> AsyncIterator[IndexerLoop]:
    """The audit indexer (its own group, ``read_committed``) indexing the audit topic into
    ``store`` while the block runs, as ``schakel up`` runs it beside the routers."""
    indexer = IndexerLoop(settings, store)
    await indexer.start()
    task = asyncio.create_task(indexer.run())
    try:
        yield indexer
    finally:
        await indexer.stop()
        await asyncio.wait_for(task, 15)


async def until(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)
