"""Storage limitation in the workplace (AVG art. 5(1)(e)): what the covenants let a RIEC keep.

An item may be kept as long as the rule that delivered it says (``retention_days`` of the feed
message); a case as long as its longest-kept item. :func:`purge` deletes every case past its
time with its entries and items — closing it first if it was open — and every item in no case
past its time, with their histories. Each purged case is one audit record; the loose items one
record per recipient and covenant, with their number. Nothing purged can be read back from the
workplace; the audit records say what was deleted and when, never what it held.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select

from services.database.tables.riec import (
    riec_case_entries,
    riec_cases,
    riec_item_events,
    riec_items,
)
from services.riec.records import action_record
from services.riec.workplace import Workplace

ACTOR = "retention"
CHUNK = 500


@dataclass(frozen=True, slots=True)
class Purged:
    cases: int
    items: int


def purge(workplace: Workplace, now: datetime) -> Purged:
    """Delete what is past its retention at ``now``; returns how much."""
    c, i = riec_cases.c, riec_items.c
    with workplace.engine.connect() as connection:
        due = connection.execute(
            select(c.id, c.recipient, c.covenant_id, c.state).where(c.keep_until < now)
        ).all()
    cases = 0
    items_purged = 0
    for case_id, recipient, covenant_id, state in due:
        with workplace.engine.begin() as connection:
            ids = list(connection.execute(select(i.id).where(i.case_id == case_id)).scalars())
            entries = connection.execute(
                delete(riec_case_entries).where(riec_case_entries.c.case_id == case_id)
            ).rowcount
            _delete_items(connection, ids)
            connection.execute(delete(riec_cases).where(c.id == case_id))
        workplace.write(
            action_record(
                f"riec-{case_id}-purge", "purge", actor=ACTOR, at=now, recipient=recipient,
                covenant_id=covenant_id, object_kind="riec-case",
                reference={"case": case_id, "items": len(ids), "entries": entries,
                           "was": state},
                reason="retention of the case's contents passed",
            )
        )  # fmt: skip
        cases += 1
        items_purged += len(ids)
    loose: Counter[tuple[str, str]] = Counter()
    while True:
        with workplace.engine.begin() as connection:
            rows = connection.execute(
                select(i.id, i.recipient, i.covenant_id)
                .where(i.keep_until < now, i.case_id.is_(None))
                .limit(CHUNK)
            ).all()
            _delete_items(connection, [row[0] for row in rows])
        loose.update((r, cov) for _, r, cov in rows)
        if len(rows) < CHUNK:
            break
    stamp = now.strftime("%Y%m%dT%H%M%S")
    for (recipient, covenant_id), count in sorted(loose.items()):
        workplace.write(
            action_record(
                f"riec-items-{recipient}-{covenant_id}-{stamp}-purge", "purge-items",
                actor=ACTOR, at=now, recipient=recipient, covenant_id=covenant_id,
                object_kind="riec-item", reference={"items": count},
                reason="retention of items in no case passed",
            )
        )  # fmt: skip
    return Purged(cases, items_purged + sum(loose.values()))


def _delete_items(connection: Connection, ids: list[str]) -> None:
    if not ids:
        return
    connection.execute(delete(riec_item_events).where(riec_item_events.c.item_id.in_(ids)))
    connection.execute(delete(riec_items).where(riec_items.c.id.in_(ids)))
