"""`schakel up --demo` never sends a signal dated ahead of the clock (the hub refuses those as
``time_in_future``): its 60 days of traffic start over once they reach the clock."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import pytest
from aiokafka.errors import RequestTimedOutError

from services.hub.demo import (
    DEMO_POSITION_FILE,
    SendFailures,
    _save_round,
    _send,
    _traffic,
    next_round,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_demo_traffic_starts_over_with_fresh_ids_when_it_reaches_the_clock():
    moments = iter([NOW, *([NOW - timedelta(days=59)] * 10**6)])
    clock = lambda: next(moments)  # noqa: E731 - a clock the test moves: first NOW, then back
    sent = list(islice(_traffic(2026, clock, asyncio.Event(), per_day=60), 120))
    times = [datetime.fromisoformat(str(e["time"])) for _, e in sent]
    assert max(times) <= NOW - timedelta(days=59)
    first_round_end = next(i for i in range(1, len(times)) if times[i] < times[i - 1])
    first = {e["id"] for _, e in sent[:first_round_end]}
    second = {e["id"] for _, e in sent[first_round_end:]}
    assert first and second and not first & second
    assert times[first_round_end] >= NOW - timedelta(days=119) - timedelta(minutes=1)


def test_demo_traffic_stops_when_asked():
    stop = asyncio.Event()
    stop.set()
    assert list(_traffic(2026, lambda: NOW, stop)) == []


def test_a_restarted_demo_sends_fresh_ids_not_the_last_runs_again(tmp_path: Path):
    """Issue 15, F2: every run started at round 0, so a restart re-sent the last run's ids
    (some with another time) and the router took them for decided signals."""
    position = tmp_path / DEMO_POSITION_FILE

    def run() -> set[str]:
        traffic = _traffic(
            2026,
            lambda: NOW,
            asyncio.Event(),
            per_day=60,
            first_round=next_round(position),
            on_round=lambda r: _save_round(position, r),
        )
        return {str(e["id"]) for _, e in islice(traffic, 40)}

    first, second, third = run(), run(), run()
    assert len(first) == 40
    assert not first & second and not second & third and not first & third
    # without a position (tests, benchmarks) every run is the same traffic: round 0
    assert next_round(None) == 0
    again = _traffic(2026, lambda: NOW, asyncio.Event(), per_day=60)
    assert {str(e["id"]) for _, e in islice(again, 40)} == first


def test_an_unreadable_position_starts_at_round_zero(tmp_path: Path):
    broken = tmp_path / DEMO_POSITION_FILE
    broken.write_text("{")
    assert next_round(broken) == 0
    assert next_round(tmp_path / "missing.json") == 0
    broken.write_text('{"next_round": 7}')
    assert next_round(broken) == 7


def test_failed_sends_are_retrieved_counted_and_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture,
):
    async def scenario() -> SendFailures:
        failures = SendFailures()
        loop = asyncio.get_running_loop()
        for _ in range(200):
            future: asyncio.Future[object] = loop.create_future()
            failures.watch(future)
            future.set_exception(RequestTimedOutError())
        await asyncio.sleep(0)
        return failures

    unretrieved: list[dict[str, object]] = []

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        unretrieved.append(context)

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger="schakel.hub"):
            failures = loop.run_until_complete(scenario())
    finally:
        loop.close()
    gc.collect()
    assert failures.failed == 200
    assert len([r for r in caplog.records if "not acknowledged" in r.message]) == 1
    assert not unretrieved


@pytest.mark.timeout(30)
def test_a_stop_does_not_wait_for_a_producer_whose_buffer_is_full():
    """With the broker away aiokafka's send blocks until its buffer has room; Ctrl-C must
    not wait for that."""

    class Stuck:
        async def send(self, topic: str, value: bytes) -> asyncio.Future[object]:
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

    async def scenario() -> tuple[object, float]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stop.set)
        started = time.monotonic()
        sent = await _send(Stuck(), "signals.liander", b"{}", stop)  # type: ignore[arg-type]
        return sent, time.monotonic() - started

    sent, took = asyncio.run(scenario())
    assert sent is None
    assert took < 2
