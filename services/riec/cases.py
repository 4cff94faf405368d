"""Case files: items bundled by the analyst, notes and decisions, a four-eyes
re-identification started from the case, the outcome — each step a case entry and an audit
record.

A case belongs to one recipient and one covenant (purpose limitation: an item delivered under
another covenant does not join it). It may be kept as long as its longest-kept item
(``keep_until``); :mod:`services.riec.retention` purges it then. Re-identification goes through
:class:`~services.reid.workflow.Reidentification` with the case id as purpose and case
reference, and only for a pseudonym one of the case's items carries — the workplace never
reaches beyond what the feed delivered. An outcome is also written to the outcome index
(issue 13) at the hub-internal pseudonyms of the case's locations, so the indicators count it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, insert, select, update

from services.audit.queries import utc
from services.core.outcomes.entries import Entries
from services.database.tables.riec import riec_case_entries, riec_cases, riec_items
from services.outcomes.store import OutcomeStore
from services.reid.model import ReidError
from services.reid.model import Request as ReidRequest
from services.reid.workflow import Reidentification
from services.riec import audit_outbox, case_handover
from services.riec.case_rows import case_of, outcome_entry, still_open
from services.riec.handover import MEASURES, HandedOver, HandOver
from services.riec.model import (
    OUTCOMES,
    Case,
    CaseState,
    Event,
    Item,
    ItemState,
    NotFoundError,
    RiecError,
)
from services.riec.records import action_record
from services.riec.workplace import Workplace, clean
from services.web.users import User

MAX_NOTE = 2000


class CaseFiles:
    """Case files of ``workplace``; ``reid`` files re-identification requests, ``outcomes``
    receives recorded outcomes, ``handover`` sends hand-overs (each optional)."""

    measures = MEASURES

    def __init__(
        self,
        workplace: Workplace,
        reid: Reidentification | None = None,
        outcomes: OutcomeStore | None = None,
        handover: HandOver | None = None,
    ) -> None:
        self.workplace = workplace
        self.reid = reid
        self.outcomes = outcomes
        self.handover = handover

    # -- reading -------------------------------------------------------------------------

    def get(self, user: User, case_id: str) -> Case:
        where = self.workplace.reach(user)
        with self.workplace.engine.connect() as connection:
            row = (
                connection.execute(select(riec_cases).where(riec_cases.c.id == case_id))
                .mappings()
                .one_or_none()
            )
        if row is None or not where.allows(row["recipient"], row["covenant_id"]):
            raise NotFoundError(f"no case {case_id!r} in your scope. Fix: see the case list.")
        return case_of(row)

    def listing(self, user: User, limit: int = 200) -> list[Case]:
        where = self.workplace.reach(user)
        statement = select(riec_cases).order_by(riec_cases.c.opened_at.desc()).limit(limit)
        if where.recipients is not None:
            statement = statement.where(riec_cases.c.recipient.in_(sorted(where.recipients)))
        if where.covenants is not None:
            statement = statement.where(riec_cases.c.covenant_id.in_(sorted(where.covenants)))
        with self.workplace.engine.connect() as connection:
            return [case_of(row) for row in connection.execute(statement).mappings()]

    def items(self, user: User, case_id: str) -> list[Item]:
        self.get(user, case_id)
        found = []
        with self.workplace.engine.connect() as connection:
            ids = connection.execute(
                select(riec_items.c.id)
                .where(riec_items.c.case_id == case_id)
                .order_by(riec_items.c.received_at)
            ).scalars()
            for item_id in list(ids):
                found.append(self.workplace.item(user, item_id))
        return found

    def entries(self, case_id: str) -> list[Event]:
        e = riec_case_entries.c
        statement = select(e.at, e.author, e.kind, e.text, e.record_id).where(e.case_id == case_id)
        with self.workplace.engine.connect() as connection:
            rows = connection.execute(statement.order_by(e.id)).all()
        return [Event(utc(at), who, kind, text, rid) for at, who, kind, text, rid in rows]

    def same_subject(self, user: User, case_id: str) -> list[Item]:
        """Items in the user's reach, not in a case yet, that carry one of the pseudonyms of
        the case's items: candidates to bundle (matched on the recipient's own pseudonyms)."""
        case = self.get(user, case_id)
        mine = {p for item in self.items(user, case_id) for p in item.pseudonyms}
        if not mine:
            return []
        c = riec_items.c
        statement = select(c.id, c.pseudonyms).where(
            c.recipient == case.recipient, c.covenant_id == case.covenant_id, c.case_id.is_(None)
        )
        with self.workplace.engine.connect() as connection:
            rows = connection.execute(statement).all()
        ids = [i for i, p in rows if mine & set(p.split())]
        return [self.workplace.item(user, i) for i in ids[:50]]

    # -- steps ---------------------------------------------------------------------------

    def open(self, user: User, item_id: str, title: str) -> Case:
        """Open a case from an item (new, or being assessed by ``user``); the item joins it.
        The case, its first entry and the item's move are one transaction: if the item cannot
        join, no case is left behind."""
        item = self.workplace.item(user, item_id)
        name = clean("case title", title, 200)
        now = self.workplace.now()
        case_id = f"case-{now:%Y}-{self.workplace.new_id()}"
        text = f"opened: {name}"
        record_id = f"riec-{case_id}-open-case-{self.workplace.new_id()}"
        located = self.workplace.locations(item_id)
        row = {
            "id": case_id, "recipient": item.recipient, "covenant_id": item.covenant_id,
            "title": name, "state": CaseState.OPEN.value, "opened_by": user.name,
            "opened_at": now, "keep_until": item.keep_until,
        }  # fmt: skip

        def create(connection: Connection) -> list[dict[str, Any]]:
            connection.execute(insert(riec_cases), row)
            connection.execute(
                insert(riec_case_entries),
                {"case_id": case_id, "at": now, "author": user.name, "kind": "open-case",
                 "text": text, "record_id": record_id},
            )  # fmt: skip
            return [
                action_record(
                    record_id, "open-case", actor=user.name, at=now, recipient=item.recipient,
                    covenant_id=item.covenant_id, object_kind="riec-case",
                    reference={"case": case_id, "entry_length": len(text)},
                    locations=located,
                )
            ]  # fmt: skip

        self.workplace.move(
            user, item_id, "to-case", (ItemState.NEW, ItemState.ASSESSING), ItemState.CASE,
            case_id=case_id, within=create,
        )  # fmt: skip
        return self.get(user, case_id)

    def add(self, user: User, case_id: str, item_id: str) -> Item:
        """Add an item (new or being assessed, same recipient and covenant) to an open case."""
        case = self._open_case(user, case_id)
        item = self.workplace.item(user, item_id)
        if (item.recipient, item.covenant_id) != (case.recipient, case.covenant_id):
            raise RiecError(
                f"item {item_id} was delivered under {item.covenant_id} to {item.recipient}; "
                f"case {case_id} is one of {case.recipient} under {case.covenant_id} (purpose "
                "limitation). Fix: open a separate case for it."
            )
        keep = max(item.keep_until, case.keep_until)

        def join(connection: Connection) -> list[dict[str, Any]]:
            still_open(connection, case_id, keep_until=keep)  # locks it: no purge meanwhile
            return []

        return self.workplace.move(
            user, item_id, "to-case", (ItemState.NEW, ItemState.ASSESSING), ItemState.CASE,
            case_id=case_id, within=join,
        )  # fmt: skip

    def note(self, user: User, case_id: str, text: str, *, decision: bool = False) -> Event:
        """Add a note (or, with ``decision``, a decision) to an open case."""
        case = self._open_case(user, case_id)
        body = clean("decision" if decision else "note", text, MAX_NOTE, lines=True)
        return self._entry(user, case, "decision" if decision else "note", body)

    def reidentify(self, user: User, case_id: str, pseudonym: str, why: str) -> ReidRequest:
        """File a four-eyes re-identification request for a pseudonym of the case's items,
        with the case id as purpose and case reference."""
        case = self._open_case(user, case_id)
        if self.reid is None:
            raise RiecError("re-identification is not available in this workplace.")
        pseudonym = pseudonym.strip()
        if pseudonym not in {p for i in self.items(user, case_id) for p in i.pseudonyms}:
            raise RiecError(
                f"pseudonym is not one of case {case_id}'s items. Fix: add the item that "
                "carries it to the case first."
            )
        reason = clean("reason", why)
        try:
            made = self.reid.request(
                user, recipient=case.recipient, covenant_id=case.covenant_id,
                pseudonym=pseudonym, purpose=f"case {case_id}: {reason}", case_ref=case_id,
            )  # fmt: skip
        except ReidError as error:
            raise RiecError(str(error)) from None
        self._entry(user, case, "reid", f"re-identification request {made.id} filed: {reason}")
        return made

    def hand_over(self, user: User, case_id: str, pseudonym: str, measure: str) -> HandedOver:
        """Offer the case to a partner's own process for ``measure``, about the premises behind
        one of the case's pseudonyms, as a signal under a covenant rule — staged first, so a
        crash cannot part the published signal from its case entry; handing over again with
        the same pseudonym and measure finishes a staged one (:mod:`.case_handover`)."""
        case = self._open_case(user, case_id)
        if self.handover is None:
            raise RiecError(
                "hand-over is not available: the workplace has no signing key for the RIEC. "
                "Fix: set SCHAKEL_RIEC_KEY_FILE (docs/riec.md)."
            )
        pseudonym = pseudonym.strip()
        carrying = [i for i in self.items(user, case_id) if pseudonym in i.pseudonyms]
        if not carrying:
            raise RiecError(
                f"pseudonym is not one of case {case_id}'s items. Fix: pick one the case holds."
            )
        municipality = next((i.municipality for i in carrying if i.municipality), None)
        if municipality is None:
            raise RiecError("the case's items name no municipality to hand the case over in.")
        return case_handover.hand_over(
            self, self.handover, user.name, case, pseudonym, measure, municipality, carrying
        )

    def staged_handovers(self, user: User, case_id: str) -> list[case_handover.Staged]:
        """The case's hand-overs staged and not confirmed published yet."""
        self.get(user, case_id)
        return case_handover.staged(self, case_id)

    def resume_handovers(self) -> int:
        """Finish every staged hand-over (after a crash); how many were finished."""
        return case_handover.resume(self)

    def outcome(self, user: User, case_id: str, outcome: str, text: str) -> Case:
        """Record the case's outcome (``finding``, ``no-finding``, ``measure``) and close it;
        the outcome index counts it at the case's locations."""
        case = self._open_case(user, case_id)
        if outcome not in OUTCOMES:
            raise RiecError(f"outcome must be one of {', '.join(OUTCOMES)}.")
        body = clean("outcome description", text, MAX_NOTE, lines=True)
        now = self.workplace.now()
        bundled = self.items(user, case_id)

        def close(connection: Connection) -> None:
            closed = connection.execute(
                update(riec_cases)
                .where(riec_cases.c.id == case_id, riec_cases.c.state == CaseState.OPEN.value)
                .values(outcome=outcome, state=CaseState.CLOSED.value, closed_at=now)
            ).rowcount
            if closed != 1:  # closed by someone else meanwhile: one outcome per case
                raise RiecError(f"case {case_id} changed meanwhile. Fix: reload and try again.")

        self._entry(user, case, "outcome", f"{outcome}: {body}", bundled, within=close)
        located = {loc for i in bundled for loc in self.workplace.locations(i.id)}
        if self.outcomes is not None and located:  # without a premises nothing can match it
            entry = outcome_entry(case, outcome, now, bundled, sorted(located))
            self.outcomes.write(Entries(outcomes=[entry]))
        return self.get(user, case_id)

    def _open_case(self, user: User, case_id: str) -> Case:
        case = self.get(user, case_id)
        if case.state is not CaseState.OPEN:
            raise RiecError(f"case {case_id} is {case.state.value}; it takes no more steps.")
        return case

    def _entry(
        self, user: User, case: Case, step: str, text: str, bundled: list[Item] | None = None,
        *, extra: dict[str, Any] | None = None,
        within: Callable[[Connection], None] | None = None,
    ) -> Event:  # fmt: skip
        """Add the entry and stage its audit record in one transaction (``within`` runs in it
        first: the case's own change), then flush the record to the audit store."""
        now = self.workplace.now()
        record_id = f"riec-{case.id}-{step}-{self.workplace.new_id()}"
        located = [loc for i in bundled or [] for loc in self.workplace.locations(i.id)]
        record = action_record(
            record_id, step, actor=user.name, at=now, recipient=case.recipient,
            covenant_id=case.covenant_id, object_kind="riec-case",
            reference={"case": case.id, "entry_length": len(text), **(extra or {})},
            locations=located,
        )  # fmt: skip
        with self.workplace.engine.begin() as connection:
            if within is not None:
                within(connection)
            else:
                still_open(connection, case.id)
            connection.execute(
                insert(riec_case_entries),
                {"case_id": case.id, "at": now, "author": user.name, "kind": step,
                 "text": text, "record_id": record_id},
            )  # fmt: skip
            audit_outbox.stage(connection, [record])
        self.workplace.flush_audit()
        return Event(now, user.name, step, text, record_id)
