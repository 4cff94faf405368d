"""`schakel up --demo` never sends a signal dated ahead of the clock (the hub refuses those as
``time_in_future``): its 60 days of traffic start over once they reach the clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import islice

from services.hub.demo import _traffic

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
