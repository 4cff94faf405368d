"""Handing a case over without a gap a crash could fall into: stage, publish, mark done.

A hand-over is published on the broker and told of in the case file and the audit log; those
are two stores, so it happens in three steps, each safe to die after:

1. **Stage** — in one transaction: the hand-over (``riec_handovers``, state ``handing-over``,
   under its signal id), a ``handing-over`` case entry and its audit record
   (``riec-handing-over``, ``staged``). Nothing has left the hub yet.
2. **Publish** the signal.
3. **Mark it done** — in one transaction: the state ``handed-over``, a ``handover`` case entry
   and its audit record (``riec-handover``, ``offered``); only if it was still staged, so a
   second finisher adds nothing.

A crash after 1 or 2 leaves the hand-over staged: the case file says it is being handed over,
never that it was handed over. A retry — the analyst handing over again with the same
pseudonym and measure, or :func:`resume` when the web workplace starts — finds it, builds the
very same signal (same id, same time; the value behind the pseudonym recovered in memory
again) and publishes it again: the router takes an identical re-send as the same signal
(services/router/resend.py), so the partner gets it once. Covenants changed in between are
asked again: a staged hand-over no rule allows any more is withheld, not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, insert, select, update

from services.audit.queries import utc
from services.database.tables.riec import (
    riec_case_entries,
    riec_cases,
    riec_handovers,
    riec_items,
)
from services.riec import audit_outbox
from services.riec.case_rows import case_of, still_open
from services.riec.handover import HandedOver, HandOver, Prepared, WithheldError
from services.riec.model import Case, Item, RiecError
from services.riec.records import action_record

if TYPE_CHECKING:
    from services.riec.cases import CaseFiles

STAGED: Final = "handing-over"
DONE: Final = "handed-over"
WITHHELD: Final = "withheld"
log = logging.getLogger("schakel.riec")


@dataclass(frozen=True, slots=True)
class Staged:
    """A hand-over of a case staged and not yet marked done."""

    signal_id: str
    case_id: str
    author: str
    at: datetime
    pseudonym: str
    measure: str
    municipality: str


def hand_over(
    files: CaseFiles,
    handover: HandOver,
    author: str,
    case: Case,
    pseudonym: str,
    measure: str,
    municipality: str,
    carrying: Sequence[Item],
) -> HandedOver:
    """Hand ``case`` over (checked by the caller: open, in the user's reach, ``pseudonym`` one
    of ``carrying``'s): a hand-over staged before with the same pseudonym and measure is
    finished, under its own signal id; otherwise a new one is staged, published and marked."""
    workplace = files.workplace
    located = [loc for i in carrying for loc in workplace.locations(i.id)]
    staged = _staged_for(files, case.id, pseudonym, measure)
    now = workplace.now()
    if staged is None:
        staged = Staged(
            f"{case.id}-handover-{workplace.new_id()}", case.id, author, now, pseudonym,
            measure, municipality,
        )  # fmt: skip
        fresh = True
    else:
        fresh = False
    try:
        prepared = handover.prepare(
            case, pseudonym, measure, staged.municipality, staged.at, staged.signal_id, now
        )
    except WithheldError:  # deny by default, and the withholding is audited
        _withheld(files, author, case, staged, located, was_staged=not fresh)
        raise
    if fresh:
        _stage(files, case, staged, prepared, located)
    return _publish(files, handover, case, staged, prepared, located, author)


def resume(files: CaseFiles) -> int:
    """Finish every staged hand-over (the web workplace does at start); returns how many were
    finished. One that cannot be published now stays staged, logged by count only."""
    if files.handover is None:
        return 0
    h = riec_handovers.c
    with files.workplace.engine.connect() as connection:
        rows = connection.execute(select(riec_handovers).where(h.state == STAGED)).mappings().all()
    finished = failed = 0
    for row in rows:
        staged = _staged_of(row)
        case = _case(files, staged.case_id)
        if case is None:
            continue
        located = _located(files, case.id, staged.pseudonym)
        try:
            prepared = files.handover.prepare(
                case, staged.pseudonym, staged.measure, staged.municipality, staged.at,
                staged.signal_id, files.workplace.now(),
            )  # fmt: skip
        except WithheldError:
            _withheld(files, staged.author, case, staged, located, was_staged=True)
            continue
        except RiecError:
            failed += 1
            continue
        try:
            _publish(files, files.handover, case, staged, prepared, located, staged.author)
        except RiecError:
            failed += 1
            continue
        finished += 1
    if failed:
        log.warning("RIEC workplace: %d staged hand-over(s) not published yet; retried", failed)
    return finished


def staged(files: CaseFiles, case_id: str) -> list[Staged]:
    """The case's hand-overs staged and not yet marked done (the case page shows them)."""
    h = riec_handovers.c
    statement = select(riec_handovers).where(h.case_id == case_id, h.state == STAGED)
    with files.workplace.engine.connect() as connection:
        return [_staged_of(r) for r in connection.execute(statement.order_by(h.at)).mappings()]


def _staged_for(files: CaseFiles, case_id: str, pseudonym: str, measure: str) -> Staged | None:
    found = [s for s in staged(files, case_id) if (s.pseudonym, s.measure) == (pseudonym, measure)]
    return found[0] if found else None


def _stage(
    files: CaseFiles, case: Case, staged: Staged, prepared: Prepared, located: list[str]
) -> None:
    handed = prepared.handed
    text = (
        f"handing over for {staged.measure} to {', '.join(handed.recipients)} (signal "
        f"{staged.signal_id}, rule {', '.join(handed.rules)}): staged, being published"
    )
    with files.workplace.engine.begin() as connection:
        still_open(connection, case.id)
        connection.execute(
            insert(riec_handovers),
            {"signal_id": staged.signal_id, "case_id": case.id, "author": staged.author,
             "at": staged.at, "pseudonym": staged.pseudonym, "measure": staged.measure,
             "municipality": staged.municipality, "state": STAGED},
        )  # fmt: skip
        _entry(files, connection, staged.author, case, "handing-over", text, staged, located)
    files.workplace.flush_audit()


def _publish(
    files: CaseFiles,
    handover: HandOver,
    case: Case,
    staged: Staged,
    prepared: Prepared,
    located: list[str],
    author: str,
) -> HandedOver:
    """Publish, then mark it done with a ``handover`` entry by ``author`` (who finished it)."""
    try:
        handover.publish(prepared)
    except RiecError as error:
        raise RiecError(
            f"{error} The hand-over stays staged as signal {staged.signal_id}; handing it over "
            "again with the same pseudonym and measure sends that same signal, once."
        ) from None
    handed = prepared.handed
    text = (
        f"handed over for {staged.measure} to {', '.join(handed.recipients)} (signal "
        f"{staged.signal_id}, rule {', '.join(handed.rules)})"
    )
    with files.workplace.engine.begin() as connection:
        if _mark(connection, staged, DONE):
            _entry(files, connection, author, case, "handover", text, staged, located)
    files.workplace.flush_audit()
    return handed


def _withheld(
    files: CaseFiles,
    author: str,
    case: Case,
    staged: Staged,
    located: list[str],
    *,
    was_staged: bool,
) -> None:
    text = (
        f"hand-over for {staged.measure} in {staged.municipality} withheld: no covenant rule "
        f"allows it (signal {staged.signal_id} not sent"
        + (" again; it was staged, and had it reached the broker before, the router's audit "
           "shows what it did with it)" if was_staged else ")")
    )  # fmt: skip
    with files.workplace.engine.begin() as connection:
        if was_staged:
            if not _mark(connection, staged, WITHHELD):
                return
        else:
            still_open(connection, case.id)
        _entry(files, connection, author, case, "handover-withheld", text, staged, located)
    files.workplace.flush_audit()


def _mark(connection: Connection, staged: Staged, state: str) -> bool:
    """Move a staged hand-over to ``state`` (locking its case's row first, as every step on a
    case does: the purge cannot interleave); ``False`` if it is no longer staged (finished by
    someone else meanwhile, or purged with its case)."""
    c, h = riec_cases.c, riec_handovers.c
    connection.execute(update(riec_cases).where(c.id == staged.case_id).values(state=c.state))
    marked = connection.execute(
        update(riec_handovers)
        .where(h.signal_id == staged.signal_id, h.state == STAGED)
        .values(state=state)
    ).rowcount
    return bool(marked == 1)


def _entry(
    files: CaseFiles,
    connection: Connection,
    author: str,
    case: Case,
    step: str,
    text: str,
    staged: Staged,
    located: list[str],
) -> None:
    workplace = files.workplace
    now = workplace.now()
    record_id = f"riec-{case.id}-{step}-{workplace.new_id()}"
    connection.execute(
        insert(riec_case_entries),
        {"case_id": case.id, "at": now, "author": author, "kind": step, "text": text,
         "record_id": record_id},
    )  # fmt: skip
    reference: dict[str, Any] = {
        "case": case.id, "entry_length": len(text), "measure": staged.measure,
        "municipality": staged.municipality, "signal": staged.signal_id,
    }  # fmt: skip
    record = action_record(
        record_id, step, actor=author, at=now, recipient=case.recipient,
        covenant_id=case.covenant_id, object_kind="riec-case", reference=reference,
        locations=located,
    )  # fmt: skip
    audit_outbox.stage(connection, [record])


def _case(files: CaseFiles, case_id: str) -> Case | None:
    with files.workplace.engine.connect() as connection:
        row = (
            connection.execute(select(riec_cases).where(riec_cases.c.id == case_id))
            .mappings()
            .one_or_none()
        )
    return None if row is None else case_of(row)


def _located(files: CaseFiles, case_id: str, pseudonym: str) -> list[str]:
    i = riec_items.c
    with files.workplace.engine.connect() as connection:
        rows = connection.execute(
            select(i.pseudonyms, i.locations).where(i.case_id == case_id)
        ).all()
    return [loc for names, locs in rows if pseudonym in names.split() for loc in locs.split()]


def _staged_of(row: Any) -> Staged:
    return Staged(
        signal_id=str(row["signal_id"]),
        case_id=str(row["case_id"]),
        author=str(row["author"]),
        at=utc(row["at"]),
        pseudonym=str(row["pseudonym"]),
        measure=str(row["measure"]),
        municipality=str(row["municipality"]),
    )
