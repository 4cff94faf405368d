"""Tables of the web workplace, in their own metadata next to the audit tables.

``web_users``
    One row per person who may sign in: name, role and a scrypt password hash
    (:mod:`services.web.passwords`).
``web_user_scopes``
    What a scoped privacy officer may see: ``(user, kind, value)`` with kind ``covenant`` or
    ``partner``.
``access_log``
    One row per request that showed audit data: who, when, which route and which filters.
    Raw identifiers never go in here; a subject look-up is logged as its identifier kind and
    the number of internal pseudonyms searched.
``web_sessions``
    One row per signed-in session (:mod:`services.web.sessions`): the SHA-256 of its token
    (never the token), the user, when it began and when it was last used. Signing out deletes
    the row, so a copied cookie stops working.
``integrity_runs``
    One row per verification of the audit log run from the web (:mod:`services.web.integrity`):
    who asked, when it began and ended, its state and the outcome (as JSON), so the integrity
    page shows the last result without re-verifying.
``web_sign_in_throttle``
    Failed sign-ins per account and per client (:mod:`services.web.throttle`): an HMAC of the
    account name or client address (never either in clear), the failures in a row, the last
    one, and until when sign-in there is blocked.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

web_users = Table(
    "web_users",
    metadata,
    Column("name", String, primary_key=True),
    Column("role", String, nullable=False),
    Column("password_hash", String, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

web_user_scopes = Table(
    "web_user_scopes",
    metadata,
    Column(
        "user_name",
        String,
        ForeignKey(web_users.c.name, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kind", String, primary_key=True),
    Column("value", String, primary_key=True),
)

access_log = Table(
    "access_log",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("user_name", String, nullable=False),
    Column("route", String, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_access_log_user_name", "user_name", "at"),
    Index("ix_access_log_at", "at"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column(
        "user_name",
        String,
        ForeignKey(web_users.c.name, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=False),
    Index("ix_web_sessions_user_name", "user_name"),
)

integrity_runs = Table(
    "integrity_runs",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("requested_by", String, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("state", String, nullable=False),
    Column("ok", Boolean, nullable=True),
    Column("records", BigInteger, nullable=True),
    Column("outcome", Text, nullable=True),
    Index("ix_integrity_runs_state", "state", "id"),
)

web_sign_in_throttle = Table(
    "web_sign_in_throttle",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("last_failure_at", DateTime(timezone=True), nullable=False),
    Column("blocked_until", DateTime(timezone=True), nullable=True),
    Index("ix_web_sign_in_throttle_last_failure_at", "last_failure_at"),
)
