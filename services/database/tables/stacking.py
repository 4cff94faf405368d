"""The stacking tables, next to the audit tables in the hub's database (Alembic ``0005``).

``stacking_locations``
    One row per tracked location, keyed by its hub-internal pseudonym: its municipality and a
    reversible hub-internal token (``locator``) that names it in an alert. No raw identifier.
``stacking_evidence``
    One row per signal within the window of its location: source, partner kind, type, barrier
    steps (space-separated), signal time and strength. Rows that fall out of the window are
    deleted (storage limitation). Times are microseconds since the epoch (UTC).
``stacking_aliases``
    Internal pseudonym of a BAG id or EAN -> the location it was seen with.
``stacking_alerts``
    The newest revision of every alert; ``published`` is false until the alert signal was
    acknowledged by the broker (the outbox of alert signals).

Made by the audit migrations (revision ``0005``) when the audit store opens the database;
:func:`create_schema` (``create_all``, which skips existing tables) still makes them on a
database used without the audit store (tests, the benchmark). On SQLite the tables keyed by
pseudonyms are ``WITHOUT ROWID``: the table *is* its primary-key B-tree, one insert per row.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

stacking_locations = Table(
    "stacking_locations",
    metadata,
    Column("location", String, primary_key=True),
    Column("municipality", String, nullable=False),
    Column("locator", String, nullable=True),
    sqlite_with_rowid=False,
)

stacking_evidence = Table(
    "stacking_evidence",
    metadata,
    Column("location", String, primary_key=True),
    Column("source", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("partner_kind", String, nullable=False),
    Column("signal_type", String, nullable=False),
    Column("barrier_steps", Text, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("strength", Float, nullable=False),
    sqlite_with_rowid=False,
)

stacking_aliases = Table(
    "stacking_aliases",
    metadata,
    Column("alias", String, primary_key=True),
    Column("location", String, nullable=False),
    sqlite_with_rowid=False,
)

stacking_alerts = Table(
    "stacking_alerts",
    metadata,
    Column("alert_id", String, primary_key=True),
    Column("signal_id", String, nullable=False),
    Column("location", String, nullable=False),
    Column("municipality", String, nullable=False),
    Column("locator", String, nullable=True),
    Column("score", Float, nullable=False),
    Column("signal_types", Text, nullable=False),
    Column("barrier_steps", Text, nullable=False),
    Column("partner_kinds", Text, nullable=False),
    Column("evidence_keys", Text, nullable=False),
    Column("first_seen_us", BigInteger, nullable=False),
    Column("last_seen_us", BigInteger, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("raised_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Column("published", Boolean, nullable=False, server_default=false()),
    Index("ix_stacking_alerts_location", "location"),
    Index("ix_stacking_alerts_published", "published"),
    Index("ix_stacking_alerts_municipality", "municipality", "score"),
)


def create_schema(engine: Engine) -> None:
    """Create the stacking tables that do not exist yet."""
    metadata.create_all(engine)
