"""Rows of the case files as data: a case row as a :class:`Case`, the outcome index entry
of a case closed with an outcome (issue 13's indicators count it), and the lock every step on a
case takes on its row (:func:`still_open`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, update

from services.audit.queries import utc
from services.core.outcomes.entries import OutcomeEntry
from services.database.tables.riec import riec_cases
from services.riec.model import OUTCOMES, Case, CaseState, Item, RiecError

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


def still_open(connection: Connection, case_id: str, **values: Any) -> None:
    """Lock the case's row in ``connection``'s transaction (setting ``values``), or refuse if it
    is no longer open (closed or purged meanwhile): a step on a case and the retention purge
    of it cannot interleave."""
    c = riec_cases.c
    changed = connection.execute(
        update(riec_cases)
        .where(c.id == case_id, c.state == CaseState.OPEN.value)
        .values(state=c.state, **values)
    ).rowcount
    if changed != 1:
        raise RiecError(f"case {case_id} changed meanwhile. Fix: reload and try again.")
