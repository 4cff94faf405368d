"""Storage limitation in the workplace (AVG art. 5(1)(e)): what the covenants let a RIEC keep.

An item may be kept as long as the rule that delivered it says (``retention_days`` of the feed
message); a case as long as its longest-kept item. :func:`purge` deletes every case past its
time with its entries, hand-overs and items — closing it first if it was open — and every item
in no case past its time, with their histories. Each purged case is one audit record; the loose items one
record per recipient, covenant and batch, with their number. The record is written before the
delete it tells of, so no purge goes unrecorded; the delete re-reads the case's contents
under a lock on its row and, should an item or entry have joined meanwhile, deletes nothing
and tries again under a record naming the new contents. Nothing purged can be read back from the
workplace; the audit records say what was deleted and when, never what it held.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from services.core.errors import SchakelError
from services.database.tables.riec import (
    riec_case_entries,
    riec_cases,
    riec_handovers,
    riec_item_events,
    riec_items,
)
from services.riec.model import RiecError
from services.riec.records import action_record
from services.riec.workplace import Workplace

ACTOR = "retention"
CHUNK = 500
ATTEMPTS = 3
"""How often a case whose contents change while it is purged is tried again in one run."""
log = logging.getLogger("schakel.riec.retention")


@dataclass(frozen=True, slots=True)
class Purged:
    cases: int
    items: int


def purge(workplace: Workplace, now: datetime) -> Purged:
    """Delete what is past its retention at ``now``; returns how much.

    Each purge's audit record is written *before* its delete (audit first, idempotently): if
    the record cannot be written, nothing is deleted (:class:`RiecError`, the purge stops); if
    the delete fails after the record was written, a rerun writes the same record id (the
    store skips it) and deletes. Record ids are deterministic: the case's, or for loose items
    a digest of the ids purged — two purges in one second never collide."""
    c, i = riec_cases.c, riec_items.c
    with workplace.engine.connect() as connection:
        due = connection.execute(
            select(c.id, c.recipient, c.covenant_id, c.state).where(c.keep_until < now)
        ).all()
    cases = 0
    items_purged = 0
    for case_id, recipient, covenant_id, state in due:
        for _attempt in range(ATTEMPTS):
            deleted = _purge_case(workplace, now, case_id, recipient, covenant_id, state)
            if deleted is not None:
                cases += 1
                items_purged += deleted
                break
        else:
            log.warning("retention: a case kept changing while being purged; next run retries")
    while True:
        with workplace.engine.connect() as connection:
            rows = connection.execute(
                select(i.id, i.recipient, i.covenant_id)
                .where(i.keep_until < now, i.case_id.is_(None))
                .order_by(i.id)
                .limit(CHUNK)
            ).all()
        groups: dict[tuple[str, str], list[str]] = {}
        for item_id, recipient, covenant_id in rows:
            groups.setdefault((recipient, covenant_id), []).append(item_id)
        for (recipient, covenant_id), ids in sorted(groups.items()):
            _audit_first(
                workplace,
                action_record(
                    f"riec-items-{recipient}-{covenant_id}-{_digest(ids)}-purge",
                    "purge-items", actor=ACTOR, at=now, recipient=recipient,
                    covenant_id=covenant_id, object_kind="riec-item",
                    reference={"items": len(ids)},
                    reason="retention of items in no case passed",
                ),
            )  # fmt: skip
            with workplace.engine.begin() as connection:
                _delete_items(connection, ids)
            items_purged += len(ids)
        if len(rows) < CHUNK:
            break
    return Purged(cases, items_purged)


def _contents(connection: Connection, case_id: str) -> tuple[list[str], list[int]]:
    i, e = riec_items.c, riec_case_entries.c
    ids = list(
        connection.execute(select(i.id).where(i.case_id == case_id).order_by(i.id)).scalars()
    )
    entries = list(
        connection.execute(select(e.id).where(e.case_id == case_id).order_by(e.id)).scalars()
    )
    return ids, entries


def _purge_case(
    workplace: Workplace, now: datetime, case_id: str, recipient: str, covenant_id: str,
    state: str,
) -> int | None:  # fmt: skip
    """Audit, then delete one case with its entries and items; ``None`` if what it holds
    changed in between (an item or entry added meanwhile): nothing is deleted, and the caller
    tries again under a record naming the new contents. The delete locks the case's row first
    (the workplace's steps on a case lock it too), so nothing can join it until it is gone."""
    with workplace.engine.connect() as connection:
        ids, entries = _contents(connection, case_id)
    _audit_first(
        workplace,
        action_record(
            f"riec-{case_id}-purge-{_digest([*ids, *map(str, entries)])}", "purge",
            actor=ACTOR, at=now, recipient=recipient, covenant_id=covenant_id,
            object_kind="riec-case",
            reference={"case": case_id, "items": len(ids), "entries": len(entries),
                       "was": state},
            reason="retention of the case's contents passed",
        ),
    )  # fmt: skip
    c = riec_cases.c
    with workplace.engine.begin() as connection:
        connection.execute(update(riec_cases).where(c.id == case_id).values(state=c.state))
        if _contents(connection, case_id) != (ids, entries):
            return None
        connection.execute(delete(riec_case_entries).where(riec_case_entries.c.case_id == case_id))
        connection.execute(delete(riec_handovers).where(riec_handovers.c.case_id == case_id))
        _delete_items(connection, ids)
        connection.execute(delete(riec_cases).where(c.id == case_id))
    return len(ids)


def _digest(ids: list[str]) -> str:
    """Names a set of purged items: the same items, the same name (a rerun is idempotent);
    other items, another (no collision, whatever the time)."""
    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:24]


def _audit_first(workplace: Workplace, record: dict[str, Any]) -> None:
    try:
        workplace.audit.record([record], [])
    except SchakelError as error:
        raise RiecError(
            f"retention purge stopped: its audit record {record['record_id']} could not be "
            f"written ({type(error).__name__}), so nothing of it was deleted. Fix: repair the "
            "audit store and run `schakel riec purge` again."
        ) from None


def _delete_items(connection: Connection, ids: list[str]) -> None:
    if not ids:
        return
    connection.execute(delete(riec_item_events).where(riec_item_events.c.item_id.in_(ids)))
    connection.execute(delete(riec_items).where(riec_items.c.id.in_(ids)))
