"""Reading filter values from query strings and forms, strictly.

Values are only ever compared for equality in bound SQL parameters, so any text is harmless
there; what is checked here is shape — dates, numbers, lengths — so that a bad value gives a
clear message on the page instead of an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from services.audit.queries import Filters, Period
from services.reid.workflow import STEP_RESULTS
from services.riec.records import RESULTS as RIEC_RESULTS
from services.web.sign_in_audit import REFUSED as SIGN_IN_REFUSED
from services.web.users import USER_CHANGED

MAX_VALUE_LENGTH = 200
RESULTS: tuple[str, ...] = tuple(
    dict.fromkeys(
        (
            "delivered",
            "withheld",
            "rejected",
            *STEP_RESULTS.values(),
            "purged",
            USER_CHANGED,
            SIGN_IN_REFUSED,
            *RIEC_RESULTS.values(),
        )
    )
)
"""Every ``result`` an audit record can have: the router's decisions and rejections, the
re-identification steps (:mod:`services.reid.workflow`), retention's purge record
(:func:`services.audit.retention.purge_record`), changes to the workplace's users
(:func:`services.web.users.user_change_record`), refused sign-ins
(:mod:`services.web.sign_in_audit`) and the RIEC workplace's actions
(:mod:`services.riec.records`)."""


class FormError(ValueError):
    """A filter value that cannot be used; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class SearchForm:
    """The filters as typed (for re-filling the form) and as parsed."""

    values: dict[str, str]
    filters: Filters
    cursor: int | None


FIELDS = ("from", "to", "partner", "recipient", "covenant", "rule", "result", "type")


def text(values: Mapping[str, str], name: str) -> str | None:
    value = values.get(name, "").strip()
    if len(value) > MAX_VALUE_LENGTH:
        raise FormError(f"{name} is longer than {MAX_VALUE_LENGTH} characters")
    return value or None


def day(values: Mapping[str, str], name: str, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` date as the UTC instant it starts (``end``: the day after, so a
    "to" date includes its whole day)."""
    raw = text(values, name)
    if raw is None:
        return None
    try:
        parsed = date.fromisoformat(raw)
    except ValueError:
        raise FormError(f"{name} must be a date like 2026-11-22") from None
    moment = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def period(values: Mapping[str, str]) -> Period:
    return Period(day(values, "from"), day(values, "to", end=True))


def cursor(values: Mapping[str, str]) -> int | None:
    raw = text(values, "cursor")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise FormError("cursor must be a positive number")
    return int(raw)


def search_form(values: Mapping[str, str]) -> SearchForm:
    """Parse the exchange search's query string."""
    result = text(values, "result")
    if result is not None and result not in RESULTS:
        raise FormError(f"result must be one of {', '.join(RESULTS)}")
    filters = Filters(
        period=period(values),
        origin=text(values, "partner"),
        recipient=text(values, "recipient"),
        covenant=text(values, "covenant"),
        rule=text(values, "rule"),
        result=result,
        signal_type=text(values, "type"),
    )
    shown = {name: values.get(name, "")[:MAX_VALUE_LENGTH] for name in FIELDS}
    return SearchForm(shown, filters, cursor(values))
