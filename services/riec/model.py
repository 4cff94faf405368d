"""The RIEC workplace as data: triage states, items, cases and filters, and its errors.

An item (an alert or signal a RIEC's feed delivered) moves ``new`` → ``assessing`` →
``case`` | ``dismissed`` (``dismissed`` needs a reason); a dismissed item may be taken up
again. A case is ``open`` until it is ``closed`` with an outcome; retention purges it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from services.core.errors import SchakelError


class RiecError(SchakelError):
    """A workplace action was refused; the message says why and what to do."""


class NotFoundError(RiecError):
    """No such item or case within the user's scope (an item of another RIEC is "not found",
    so its existence is not disclosed)."""


class HeldError(RiecError):
    """The item is being assessed by another analyst; only a take-over (audited) moves it."""


class ItemState(StrEnum):
    NEW = "new"
    ASSESSING = "assessing"
    CASE = "case"
    DISMISSED = "dismissed"


class CaseState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


OUTCOMES: dict[str, str] = {
    "finding": "finding",
    "no-finding": "no_finding",
    "measure": "measure",
}
"""Outcomes an analyst records for a case, and the outcome class (issue 13's indicators)
each is counted as: a location found, a check that found nothing, a measure taken."""


@dataclass(frozen=True, slots=True)
class Item:
    """One alert or signal as the RIEC's feed delivered it, with its triage state."""

    id: str
    recipient: str
    covenant_id: str
    rule_id: str
    signal_type: str
    received_at: datetime
    municipality: str | None
    score: float | None
    steps: tuple[str, ...]
    alert: bool
    message: dict[str, Any]
    pseudonyms: tuple[str, ...]
    state: ItemState
    holder: str | None
    case_id: str | None
    reason: str | None
    keep_until: datetime

    def age_days(self, now: datetime) -> int:
        return max(0, (now - self.received_at) // timedelta(days=1))


@dataclass(frozen=True, slots=True)
class Event:
    """One step in an item's or a case's history."""

    at: datetime
    actor: str
    step: str
    detail: str | None
    record_id: str


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    recipient: str
    covenant_id: str
    title: str
    state: CaseState
    opened_by: str
    opened_at: datetime
    keep_until: datetime
    outcome: str | None
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """The queue's filters: ``None`` means any."""

    state: ItemState | None = None
    municipality: str | None = None
    step: str | None = None
    signal_type: str | None = None
    min_score: float | None = None
    max_age_days: int | None = None

    def as_log(self) -> dict[str, Any]:
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: str(v) for k, v in found.items() if v is not None}


BARRIER_KINDS: tuple[str, ...] = ("campaign", "check", "screening", "closure", "other")
"""Kinds of barrier in the joint plan; a ``campaign`` (e.g. NH Drugsalert's) is what the
coverage page's low-report municipalities link to."""


@dataclass(frozen=True, slots=True)
class Barrier:
    """One barrier a partner raised in one municipality against one barrier-model step."""

    id: int
    model: str
    step: str
    partner: str
    kind: str
    municipality: str
    description: str
    since: date
    raised_by: str
