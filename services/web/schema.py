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

from services.audit.schema import NAMING_CONVENTION

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
