"""The tables of re-identification requests (:mod:`services.reid`), in their own metadata.

``reid_requests``
    One row per request: who asked, for which recipient, covenant and pseudonym, why (purpose
    and case reference), its state and who decided. The value behind the pseudonym is never
    stored; ``subject`` is its hub-internal pseudonym.
``reid_events``
    One row per step (request, approve, reject, reveal): who, when and the id of the audit
    record written for it, so the workflow can be followed without reading the audit log.

Made by the audit migrations (revision ``0003``) when the audit store opens the database;
:func:`services.reid.store.create_schema` (``create_all``, which skips existing tables) still makes them on a
database used without the store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

reid_requests = Table(
    "reid_requests",
    metadata,
    Column("id", String, primary_key=True),
    Column("requester", String, nullable=False),
    Column("recipient", String, nullable=False),
    Column("covenant_id", String, nullable=False),
    Column("pseudonym", String, nullable=False),
    Column("field", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("source_record", String, nullable=False),
    Column("purpose", Text, nullable=False),
    Column("case_ref", String, nullable=False),
    Column("state", String, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String),
    Column("decided_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("revealed_at", DateTime(timezone=True)),
    Index("ix_reid_requests_state", "state", "requested_at"),
    Index("ix_reid_requests_requester", "requester", "requested_at"),
)

reid_events = Table(
    "reid_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column(
        "request_id",
        String,
        ForeignKey(reid_requests.c.id, ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("step", String, nullable=False),
    Column("actor", String, nullable=False),
    Column("record_id", String, nullable=False, unique=True),
)
