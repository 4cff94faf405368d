"""Rows of the case files as data: a case row as a :class:`Case`, and the outcome index entry
of a case closed with an outcome (issue 13's indicators count it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from services.audit.queries import utc
from services.core.outcomes.entries import OutcomeEntry
from services.riec.model import OUTCOMES, Case, CaseState, Item

OUTCOME_KEEP = timedelta(days=730)


def case_of(row: Any) -> Case:
    """A ``riec_cases`` row as a :class:`Case`."""
    return Case(
        id=row["id"],
        recipient=row["recipient"],
        covenant_id=row["covenant_id"],
        title=row["title"],
        state=CaseState(row["state"]),
        opened_by=row["opened_by"],
        opened_at=utc(row["opened_at"]),
        keep_until=utc(row["keep_until"]),
        outcome=row["outcome"],
        closed_at=None if row["closed_at"] is None else utc(row["closed_at"]),
    )


def outcome_entry(
    case: Case, outcome: str, now: datetime, bundled: list[Item], located: list[str]
) -> OutcomeEntry:
    """The outcome index's entry of a closed case: at the case's locations, so the
    indicators count the signals that led to it as followed by it."""
    municipalities = {i.municipality for i in bundled if i.municipality}
    return OutcomeEntry(
        source=case.recipient,
        signal_id=case.id,
        signal_type="riec.case_outcome",
        outcome_class=OUTCOMES[outcome],
        time=now,
        municipality=next(iter(municipalities)) if len(municipalities) == 1 else None,
        data={"outcome": outcome},
        leaves=("outcome",),
        subjects={},
        rules=(),
        basis=None,
        keep_until=now + OUTCOME_KEEP,
        locations=tuple(located),
    )
