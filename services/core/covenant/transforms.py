"""What a recipient gets of one field: ``keep``, ``plain``, ``pseudonymise`` or ``generalise:<method>``.

``plain`` is an identifier in the clear; it behaves like ``keep`` but is its own word, so that
disclosing a raw identifier is always a visible, declared act (see ``plain_identifiers``).

A share specification is parsed once at covenant load time into a :class:`ShareSpec`; the
generalisers are pure functions from a canonical field value to a coarser value. Every field a
rule does not name is dropped (that is done by the compiler, not here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from services.core.identifiers import postcode4

LOCAL_TIME = ZoneInfo("Europe/Amsterdam")
"""Days and weeks are those of the Netherlands, whatever offset a partner wrote."""

Generaliser = Callable[[Any], Any]


class TransformSpecError(ValueError):
    """A share specification that is not ``keep``, ``plain``, ``pseudonymise`` or a known
    generaliser."""


@dataclass(frozen=True, slots=True)
class ShareSpec:
    """One parsed ``share`` entry."""

    text: str
    action: str  # "keep" | "plain" | "pseudonymise" | "generalise"
    method: str | None = None  # for generalise: "postcode4", "day", "week", "month", "year", "band"
    argument: str | None = None  # for band: the width, e.g. "0.1"

    @property
    def applies_to(self) -> str:
        """Which kind of value the method accepts: 'any', 'identifier', 'plain', 'location',
        'time', 'number'."""
        if self.action == "keep":
            return "any"
        if self.action == "pseudonymise":
            return "identifier"
        if self.action == "plain":
            return "plain"
        if self.method == "postcode4":
            return "location"
        if self.method == "band":
            return "number"
        return "time"


TIME_METHODS = ("hour", "day", "week", "month", "year")
METHODS = ("postcode4", "band", *TIME_METHODS)
_BAND = re.compile(r"^band:([0-9]+(\.[0-9]+)?)$")


def parse_share(text: object) -> ShareSpec:
    """Parse one share value; raise :class:`TransformSpecError` with the accepted forms."""
    if not isinstance(text, str):
        raise TransformSpecError(
            "must be a string: keep, plain, pseudonymise or generalise:<method>"
        )
    if text in ("keep", "plain", "pseudonymise"):
        return ShareSpec(text=text, action=text)
    if text.startswith("generalise:"):
        method = text.removeprefix("generalise:")
        if method in METHODS and method != "band":
            return ShareSpec(text=text, action="generalise", method=method)
        band = _BAND.match(method)
        if band:
            width = Decimal(band.group(1))
            if width <= 0:
                raise TransformSpecError(
                    "band width must be greater than 0, e.g. generalise:band:0.1"
                )
            return ShareSpec(text=text, action="generalise", method="band", argument=band.group(1))
        if method == "band":
            raise TransformSpecError("band needs a width, e.g. generalise:band:0.1")
    raise TransformSpecError(
        f"unknown share {text!r}; use keep, plain, pseudonymise, or generalise:<method> with method one of "
        "postcode4, hour, day, week, month, year, band:<width>"
    )


def generaliser(spec: ShareSpec) -> Generaliser:
    """The pure function implementing a ``generalise`` spec."""
    if spec.method == "postcode4":
        return postcode4
    if spec.method == "band":
        return _band(Decimal(spec.argument or "1"))
    if spec.method in TIME_METHODS:
        return _over_members(_TIME[spec.method])
    raise TransformSpecError(f"{spec.text!r} is not a generaliser")


@lru_cache(maxsize=65536)
def _local(value: str) -> datetime | date:
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value).astimezone(LOCAL_TIME)


@lru_cache(maxsize=65536)
def _day(value: str) -> str:
    moment = _local(value)
    return (moment.date() if isinstance(moment, datetime) else moment).isoformat()


@lru_cache(maxsize=65536)
def _hour(value: str) -> str:
    moment = _local(value)
    if not isinstance(moment, datetime):
        return moment.isoformat()
    return moment.replace(minute=0, second=0, microsecond=0).isoformat()


@lru_cache(maxsize=65536)
def _week(value: str) -> str:
    year, week, _ = _local(value).isocalendar()
    return f"{year}-W{week:02d}"


@lru_cache(maxsize=65536)
def _month(value: str) -> str:
    moment = _local(value)
    return f"{moment.year:04d}-{moment.month:02d}"


@lru_cache(maxsize=65536)
def _year(value: str) -> str:
    return f"{_local(value).year:04d}"


_TIME: dict[str | None, Callable[[str], str]] = {
    "hour": _hour,
    "day": _day,
    "week": _week,
    "month": _month,
    "year": _year,
}


def coarsen_time(unit: str, value: str) -> str:
    """A date or date-time string to the ``unit`` (hour, day, week, month or year) that
    ``generalise:<unit>`` shares, in Dutch local time."""
    return _TIME[unit](value)


def _over_members(fn: Callable[[str], str]) -> Generaliser:
    """Apply a time generaliser to a value, or to each member of an object such as a period."""

    def apply(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fn(v) if isinstance(v, str) else v for k, v in value.items()}
        if isinstance(value, str):
            return fn(value)
        raise TypeError("expected a date or date-time string")

    return apply


def _band(width: Decimal) -> Generaliser:
    @lru_cache(maxsize=4096, typed=True)  # scores recur, and each recipient asks again
    def band(value: int | float) -> str:
        try:
            lower = (Decimal(repr(value)) / width).to_integral_value(rounding="ROUND_FLOOR") * width
        except InvalidOperation as exc:  # pragma: no cover - finite floats always convert
            raise TypeError("expected a finite number") from exc
        return f"[{_plain(lower)},{_plain(lower + width)})"

    def apply(value: Any) -> str:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise TypeError("expected a finite number")
        return band(value)

    return apply


def _plain(number: Decimal) -> str:
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "") else text
