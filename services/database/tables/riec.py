"""The RIEC workplace's tables, in their own metadata next to the audit tables.

``riec_items``
    One row per feed message a RIEC received (a stacked-location alert or a signal), keyed
    by the exchange id the feed gave it: the message exactly as delivered (``message``, JSON),
    the columns the queue filters by, its triage state, who holds it, the case it went to
    and the reason it was dismissed. ``pseudonyms`` lists the recipient's own pseudonyms in
    the message (what bundles items about one subject); ``locations`` the hub-internal
    pseudonyms of the premises it is about (never shown; they match a case's outcome to earlier
    signals and index the audit records of the workplace for access requests).
``riec_item_events``
    The history of an item: one row per triage step, with who, when, and its audit record.
``riec_cases``
    Case files: which recipient and covenant they belong to, title, state, who opened them,
    until when they may be kept (the longest retention of their contents) and the outcome.
``riec_case_entries``
    Notes, decisions, re-identification requests, hand-overs and outcomes of a case, each with
    its author, time and audit record.
``riec_audit_pending``
    The audit records of workplace actions not yet in the audit store: each is staged in the
    transaction of the action it tells of and deleted once the store has it, so no action's
    change persists without its record eventually existing (``services.riec.audit_outbox``).
``riec_handovers``
    Hand-overs of a case, keyed by the signal id: staged (``handing-over``) with the case
    entry that tells of them, in one transaction, *before* the signal is published, and
    marked ``handed-over`` after; what a retry needs to publish the very same signal again
    (the RIEC's own pseudonym, the measure, the municipality, the signal's time) — never the
    value behind the pseudonym.
``riec_barriers``
    The joint barrier plan: a barrier a partner raised against one barrier-model step, of
    which kind (a campaign, a check, ...), where (a municipality) and since when.

Made by the audit migrations (revisions ``0012``, ``0013`` and ``0014``); :func:`create_schema` (``create_all``)
still makes them on a database used without the store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)
Key = BigInteger().with_variant(Integer(), "sqlite")
Moment = DateTime(timezone=True)

riec_items = Table(
    "riec_items",
    metadata,
    Column("id", String, primary_key=True),
    Column("recipient", String, nullable=False),
    Column("covenant_id", String, nullable=False),
    Column("rule_id", String, nullable=False),
    Column("signal_type", String, nullable=False),
    Column("received_at", Moment, nullable=False),
    Column("municipality", String),
    Column("score", Float),
    Column("steps", String, nullable=False),
    Column("alert", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Column("pseudonyms", Text, nullable=False),
    Column("locations", Text, nullable=False),
    Column("keep_until", Moment, nullable=False),
    Column("state", String, nullable=False),
    Column("holder", String),
    Column("case_id", String),
    Column("reason", Text),
    Index("ix_riec_items_queue", "recipient", "state", "received_at"),
    Index("ix_riec_items_received", "recipient", "received_at"),
    Index("ix_riec_items_case_id", "case_id"),
    Index("ix_riec_items_keep_until", "keep_until"),
)

riec_item_events = Table(
    "riec_item_events",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("item_id", String, nullable=False),
    Column("at", Moment, nullable=False),
    Column("actor", String, nullable=False),
    Column("step", String, nullable=False),
    Column("detail", Text),
    Column("record_id", String, nullable=False, unique=True),
    Index("ix_riec_item_events_item_id", "item_id", "id"),
)

riec_cases = Table(
    "riec_cases",
    metadata,
    Column("id", String, primary_key=True),
    Column("recipient", String, nullable=False),
    Column("covenant_id", String, nullable=False),
    Column("title", String, nullable=False),
    Column("state", String, nullable=False),
    Column("opened_by", String, nullable=False),
    Column("opened_at", Moment, nullable=False),
    Column("keep_until", Moment, nullable=False),
    Column("outcome", String),
    Column("closed_at", Moment),
    Index("ix_riec_cases_recipient", "recipient", "opened_at"),
    Index("ix_riec_cases_keep_until", "keep_until"),
)

riec_case_entries = Table(
    "riec_case_entries",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("case_id", String, nullable=False),
    Column("at", Moment, nullable=False),
    Column("author", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("text", Text, nullable=False),
    Column("record_id", String, nullable=False, unique=True),
    Index("ix_riec_case_entries_case_id", "case_id", "id"),
)

riec_audit_pending = Table(
    "riec_audit_pending",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("record_id", String, nullable=False, unique=True),
    Column("record", Text, nullable=False),
)

riec_handovers = Table(
    "riec_handovers",
    metadata,
    Column("signal_id", String, primary_key=True),
    Column("case_id", String, nullable=False),
    Column("author", String, nullable=False),
    Column("at", Moment, nullable=False),
    Column("pseudonym", String, nullable=False),
    Column("measure", String, nullable=False),
    Column("municipality", String, nullable=False),
    Column("state", String, nullable=False),
    Index("ix_riec_handovers_case_id", "case_id"),
    Index("ix_riec_handovers_state", "state"),
)

riec_barriers = Table(
    "riec_barriers",
    metadata,
    Column("id", Key, primary_key=True, autoincrement=True),
    Column("model", String, nullable=False),
    Column("step", String, nullable=False),
    Column("partner", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("municipality", String, nullable=False),
    Column("description", Text, nullable=False),
    Column("since", Date, nullable=False),
    Column("raised_by", String, nullable=False),
    Column("created_at", Moment, nullable=False),
    Index("ix_riec_barriers_step", "model", "step"),
)


def create_schema(engine: Engine) -> None:
    """Create the workplace tables if missing."""
    metadata.create_all(engine)
