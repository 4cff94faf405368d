"""A commit refused after a rebalance does not end the coverage worker (issue 15: after a
SIGKILL of the broker, the hub's coverage worker exited with CommitFailedError and was
restarted; the router, stacking and outcomes workers already carried on)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import CommitFailedError

import services.coverage.worker as module
from services.broker.settings import KafkaSettings
from services.coverage.worker import CoverageWorker

pytestmark = pytest.mark.timeout(30)


@dataclass
class Message:
    value: bytes


class RebalancedConsumer:
    """Hands out a batch (of empty records, nothing to count) and refuses its commit once."""

    def __init__(self, *_: Any, **__: Any) -> None:
        self.commits = 0
        self.polls = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def getmany(self, **_: Any) -> dict[str, list[Message]]:
        self.polls += 1
        return {"signals.liander-0": [Message(b"")]}

    async def commit(self) -> None:
        self.commits += 1
        if self.commits == 1:
            raise CommitFailedError("the group rebalanced")


def test_a_refused_commit_is_logged_and_the_worker_carries_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    made: list[RebalancedConsumer] = []

    def consumer(*args: Any, **kwargs: Any) -> RebalancedConsumer:
        made.append(RebalancedConsumer())
        return made[-1]

    monkeypatch.setattr(module, "AIOKafkaConsumer", consumer)
    worker = CoverageWorker(
        KafkaSettings.local("127.0.0.1:1"),
        None,  # type: ignore[arg-type] - nothing is counted: the records are empty
        None,  # type: ignore[arg-type]
        ["signals.liander"],
        lambda: datetime(2026, 11, 22, tzinfo=UTC),
    )

    async def scenario() -> None:
        stop = asyncio.Event()

        async def stop_after_three_commits() -> None:
            for _ in range(200):
                if made and made[0].commits >= 3:
                    break
                await asyncio.sleep(0.01)
            stop.set()

        await asyncio.gather(worker.run(stop), stop_after_three_commits())

    asyncio.run(scenario())
    assert made[0].commits >= 3
    assert "offset commit refused after a rebalance" in caplog.text


class GoneConsumer(RebalancedConsumer):
    """A broker that went away: the commit never answers."""

    async def commit(self) -> None:
        self.commits += 1
        await asyncio.sleep(3600)


def test_a_commit_without_answer_does_not_keep_a_stopped_worker_alive(
    monkeypatch: pytest.MonkeyPatch,
):
    """The hub killed outright takes its broker along; the worker, told to stop, must go
    (not hang in a commit the broker will never answer)."""
    monkeypatch.setattr(module, "AIOKafkaConsumer", lambda *a, **k: GoneConsumer())
    monkeypatch.setattr(module, "COMMIT_LIMIT_S", 0.2)
    worker = CoverageWorker(
        KafkaSettings.local("127.0.0.1:1"),
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        ["signals.liander"],
        lambda: datetime(2026, 11, 22, tzinfo=UTC),
    )

    async def scenario() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.1, stop.set)
        await asyncio.wait_for(worker.run(stop), 5)

    asyncio.run(scenario())
