"""Time for the demo: Dutch local time, RFC 3339 text in each partner's style, working hours.

Partners' systems write time differently: some in UTC with a ``Z``, some with milliseconds,
some in Dutch local time with a ``+02:00`` / ``+01:00`` offset. All of them are valid RFC 3339
and the hub must treat them alike, so the demo writes all three.

The offset of Europe/Amsterdam is computed here from the EU rule (summer time from the last
Sunday of March to the last Sunday of October, switching at 01:00 UTC) rather than read from
the system's time zone database, so the output is the same on every machine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import Enum
from random import Random

__all__ = ["TimeStyle", "amsterdam_offset", "local_date", "pick_time", "rfc3339"]

CET = timedelta(hours=1)
CEST = timedelta(hours=2)


class TimeStyle(Enum):
    """How a partner's system writes a timestamp."""

    UTC = "utc"  # 2026-09-01T12:00:00Z
    UTC_MS = "utc_ms"  # 2026-09-01T12:00:00.123Z
    LOCAL = "local"  # 2026-09-01T14:00:00+02:00


def _last_sunday(year: int, month: int) -> date:
    last = date(year, month + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def amsterdam_offset(moment: datetime) -> timedelta:
    """UTC offset of Dutch local time at the aware instant ``moment``."""
    utc = moment.astimezone(UTC)
    begin = datetime.combine(_last_sunday(utc.year, 3), datetime.min.time(), UTC) + CET
    end = datetime.combine(_last_sunday(utc.year, 10), datetime.min.time(), UTC) + CET
    return CEST if begin <= utc < end else CET


def local_date(moment: datetime) -> date:
    """The calendar day in the Netherlands at ``moment`` (periods are reported in local days)."""
    return (moment.astimezone(UTC) + amsterdam_offset(moment)).date()


def rfc3339(moment: datetime, style: TimeStyle) -> str:
    """``moment`` (aware) as RFC 3339 text in ``style``; always with an offset."""
    utc = moment.astimezone(UTC)
    if style is TimeStyle.LOCAL:
        offset = amsterdam_offset(utc)
        hours = offset.seconds // 3600
        return (utc + offset).replace(tzinfo=None).isoformat("T", "seconds") + f"+{hours:02d}:00"
    if style is TimeStyle.UTC_MS:
        return utc.replace(tzinfo=None).isoformat("T", "milliseconds") + "Z"
    return utc.replace(tzinfo=None).isoformat("T", "seconds") + "Z"


def pick_time(
    rng: Random,
    low: datetime,
    high: datetime,
    hours: tuple[int, int] = (0, 24),
    weekdays: int = 7,
) -> datetime:
    """A random instant in ``[low, high)`` at a plausible moment for the sender.

    ``hours`` is the local-time span ``[from, until)`` in which the sender works or its batch
    runs; ``weekdays`` is 5 for offices (Monday-Friday), 6 for Monday-Saturday, 7 for every
    day. When the window is too short to honour that (or the shift lands outside it) any
    instant of the window is returned: the window matters more than the office hours.
    Milliseconds are kept so that signals sent within one second still have an order.
    """
    span = (high - low).total_seconds()
    if span <= 0:
        raise ValueError("time window is empty")
    anywhere = low + timedelta(milliseconds=rng.randrange(int(span * 1000)))
    day = local_date(anywhere)
    while day.weekday() >= weekdays:
        day -= timedelta(days=1)
    first, until = hours
    seconds = rng.randrange(first * 3600, until * 3600)
    local = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
        seconds=seconds, milliseconds=rng.randrange(1000)
    )
    moment = local - amsterdam_offset(local - CEST)
    return moment if low <= moment < high else anywhere
