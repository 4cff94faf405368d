"""The RIEC workplace's triage: receive what the feed delivered, list the queue, take an item
up, dismiss it with a reason, take it up again — every step a history row and an audit record.

A step is a conditional ``UPDATE`` (the item must still be in the state the step starts from,
so two analysts cannot both take one item), its history row and its audit record, staged, in
one transaction; the staged record then goes to the audit store, and one the store refuses
is written by a later flush (:mod:`services.riec.audit_outbox`) — never lost, never twice. Items outside the user's reach are "not found" — pages and API alike.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.audit.model import AuditStore
from services.audit.queries import utc
from services.core.schema_registry import SchemaRegistry
from services.database.tables.riec import create_schema, riec_item_events, riec_items
from services.riec import audit_outbox, items
from services.riec.model import (
    Event,
    HeldError,
    Item,
    ItemState,
    NotFoundError,
    QueueFilters,
    RiecError,
)
from services.riec.records import action_record
from services.riec.scope import Reach, reach
from services.riec.text import refused_character
from services.web.users import User

Clock = Callable[[], datetime]
Within = Callable[[Connection], list[dict[str, Any]]]
MAX_REASON = 500
PAGE = 50


def clean(what: str, value: str, limit: int = MAX_REASON, *, lines: bool = False) -> str:
    """``value`` stripped, refused if empty, too long or holding a control or escape
    character (``lines`` allows line breaks and tabs, for notes)."""
    value = value.strip()
    if not value:
        raise RiecError(f"a {what} is needed. Fix: give one.")
    if len(value) > limit:
        raise RiecError(f"the {what} is longer than {limit} characters. Fix: shorten it.")
    refused = refused_character(value, lines=lines)
    if refused:
        raise RiecError(
            f"the {what} holds a control character ({refused}). Fix: type plain text"
            + (" (line breaks are allowed)." if lines else " on one line.")
        )
    return value


class Workplace:
    """The workplace on ``engine`` (which also holds the audit tables), audited into
    ``audit``; ``regions`` maps each RIEC party to its municipalities
    (:func:`services.riec.scope.regions`)."""

    def __init__(
        self,
        engine: Engine,
        audit: AuditStore,
        registry: SchemaRegistry,
        regions: Mapping[str, frozenset[str]],
        *,
        clock: Clock = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = lambda: secrets.token_hex(4),
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.registry = registry
        self.regions = dict(regions)
        self.clock = clock
        self.new_id = new_id
        self.flush_failed: Callable[[str], None] | None = None
        """Told the error type of every flush the audit store refused (the web workplace
        counts them: ``schakel_riec_audit_flush_failures_total``)."""

    def create_schema(self) -> None:
        create_schema(self.engine)

    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    def reach(self, user: User) -> Reach:
        return reach(user, self.regions)

    # -- receiving -----------------------------------------------------------------------

    def receive(
        self, recipient: str, messages: Iterable[Mapping[str, Any]], locate: items.Locate
    ) -> int:
        """Store feed messages ``recipient`` received; known exchange ids are skipped (a
        replayed feed changes nothing), and so are messages whose retention has passed already:
        a feed re-delivered after the purge must not bring purged items back (nor purge them
        again under the same record id, which the audit store would skip). Returns how many
        were new."""
        now = self.now()
        rows = [items.item_row(recipient, m, self.registry, locate) for m in messages]
        rows = [row for row in rows if row["keep_until"] >= now]
        if not rows:
            return 0
        dialect = self.engine.dialect.name
        module = postgresql if dialect == "postgresql" else sqlite
        statement = (
            module.insert(riec_items)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(riec_items.c.id)
        )  # RETURNING, not rowcount: a driver may not count a skipped conflict (psycopg: -1)
        with self.engine.begin() as connection:
            return sum(len(connection.execute(statement, row).all()) for row in rows)

    # -- reading -------------------------------------------------------------------------

    def queue(
        self, user: User, filters: QueueFilters, *, before: str | None = None, limit: int = PAGE
    ) -> list[Item]:
        """The queue page ``user`` sees, newest first."""
        statement = items.queue_statement(self.reach(user), filters, self.now(), limit, before)
        with self.engine.connect() as connection:
            return [items.item_of(row) for row in connection.execute(statement).mappings()]

    def item(self, user: User, item_id: str) -> Item:
        with self.engine.connect() as connection:
            found = items.find(connection, item_id, self.reach(user))
        if found is None:
            raise NotFoundError(f"no item {item_id!r} in your scope. Fix: pick one from the queue.")
        return found

    def history(self, item_id: str) -> list[Event]:
        e = riec_item_events.c
        statement = select(e.at, e.actor, e.step, e.detail, e.record_id).where(e.item_id == item_id)
        with self.engine.connect() as connection:
            rows = connection.execute(statement.order_by(e.id)).all()
        return [Event(utc(at), actor, step, detail, rid) for at, actor, step, detail, rid in rows]

    def municipalities(self, user: User) -> list[str]:
        """The municipality codes the user's queue may filter by."""
        where = self.reach(user)
        if where.region is not None:
            return sorted(where.region)
        return sorted({c for codes in self.regions.values() for c in codes})

    # -- triage --------------------------------------------------------------------------

    def take(self, user: User, item_id: str) -> Item:
        """Take a new item up: it is ``assessing``, held by ``user``."""
        return self.move(user, item_id, "take", (ItemState.NEW,), ItemState.ASSESSING)

    def take_over(self, user: User, item_id: str, reason: str) -> Item:
        """Take over an item another analyst holds, with the reason (audited): the only way
        to act on an item someone else is assessing."""
        why = clean("reason", reason)
        current = self.item(user, item_id)
        if current.state is ItemState.ASSESSING and current.holder == user.name:
            raise RiecError(f"item {item_id} is held by you already; nothing to take over.")
        return self.move(
            user, item_id, "takeover", (ItemState.ASSESSING,), ItemState.ASSESSING, reason=why
        )

    def dismiss(self, user: User, item_id: str, reason: str) -> Item:
        """Dismiss an item (new, or being assessed by ``user``), with the reason."""
        why = clean("reason", reason)
        return self.move(
            user, item_id, "dismiss", (ItemState.NEW, ItemState.ASSESSING),
            ItemState.DISMISSED, reason=why,
        )  # fmt: skip

    def reopen(self, user: User, item_id: str, reason: str) -> Item:
        """Take a dismissed item up again, with the reason."""
        why = clean("reason", reason)
        return self.move(
            user, item_id, "reopen", (ItemState.DISMISSED,), ItemState.ASSESSING, reason=why
        )

    def move(
        self,
        user: User,
        item_id: str,
        step: str,
        sources: Sequence[ItemState],
        to: ItemState,
        *,
        reason: str | None = None,
        case_id: str | None = None,
        within: Within | None = None,
    ) -> Item:
        """Move the item from one of ``sources`` to ``to``. An item being assessed is moved
        only by its holder (or taken over: step ``takeover``). ``within`` runs in the same
        transaction first (e.g. the case an item opens) and returns audit records to write
        before the step's own."""
        current = self.item(user, item_id)
        if current.state not in sources:
            allowed = " or ".join(s.value for s in sources)
            raise RiecError(
                f"item {item_id} is {current.state.value}; this step needs it {allowed}."
                + (f" It is held by {current.holder}." if current.holder else "")
            )
        held = current.state is ItemState.ASSESSING and current.holder not in (None, user.name)
        if held and step != "takeover":
            raise HeldError(
                f"item {item_id} is held by {current.holder}. Fix: ask them, or take it over "
                "(with a reason; the take-over is audited)."
            )
        now = self.now()
        values: dict[str, Any] = {"state": to.value, "holder": user.name}
        if step in ("dismiss", "reopen"):
            values["reason"] = reason
        if case_id is not None:
            values["case_id"] = case_id
        c = riec_items.c
        same_holder = c.holder.is_(None) if current.holder is None else c.holder == current.holder
        located = self.locations(item_id)
        with self.engine.begin() as connection:
            first = within(connection) if within is not None else []
            moved = connection.execute(
                update(riec_items)
                .where(c.id == item_id, c.state == current.state.value, same_holder)
                .values(**values)
            ).rowcount
            if moved != 1:
                raise RiecError(f"item {item_id} changed meanwhile. Fix: reload and try again.")
            record_id = self.event(connection, item_id, user.name, step, reason or case_id, now)
            own = action_record(
                record_id, step, actor=user.name, at=now, recipient=current.recipient,
                covenant_id=current.covenant_id, object_kind="riec-item",
                reference={"item": item_id, **({"case": case_id} if case_id else {}),
                           **({"from": current.holder} if step == "takeover" else {})},
                locations=located, reason=reason,
            )  # fmt: skip
            audit_outbox.stage(connection, [*first, own])
        self.flush_audit()
        return self.item(user, item_id)

    # -- shared by the case files ---------------------------------------------------------

    def event(
        self,
        connection: Connection,
        item_id: str,
        actor: str,
        step: str,
        detail: str | None,
        now: datetime,
    ) -> str:
        record_id = f"riec-{item_id}-{step}-{self.new_id()}"
        connection.execute(
            insert(riec_item_events),
            {"item_id": item_id, "at": now, "actor": actor, "step": step, "detail": detail,
             "record_id": record_id},
        )  # fmt: skip
        return record_id

    def locations(self, item_id: str) -> list[str]:
        with self.engine.connect() as connection:
            found = connection.execute(
                select(riec_items.c.locations).where(riec_items.c.id == item_id)
            ).scalar_one_or_none()
        return (found or "").split()

    def flush_audit(self) -> audit_outbox.Flushed:
        """Write every staged audit record to the audit store (after each action, and in the
        feed reader's loop); one the store refuses stays staged for the next flush, which is
        logged without identifiers (:mod:`services.riec.audit_outbox`)."""
        return audit_outbox.flush(self.engine, self.audit, on_failure=self.flush_failed)
