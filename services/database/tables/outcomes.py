"""The outcome tables, next to the audit tables in the hub's database (Alembic ``0010``,
``0011``).

``outcome_signals``
    One row per indexed signal (source, signal id): type, time, partner kind, municipality,
    strength, whether it was stackable, the alert it belongs to (``thread``), the rules that
    delivered it and the moment it is purged (``keep_until_us``). No identifier, no payload.
``outcome_signal_locations``
    ``(location, time, source, signal id)``: the hub-internal pseudonym of each premises
    identifier of the signal. The primary key *is* the matching index: an outcome looks up its
    locations and a time range in one B-tree range scan.
``outcome_events``
    One row per outcome: type, class (finding, no_finding, measure), time, the fields a
    return may share (JSON, neither identifiers nor personal data), its data paths, the
    internal pseudonyms of its identifiers (audit subjects), the return rules whose condition
    held, the rule it is processed under, and when it is purged.
``outcome_event_locations``
    Like ``outcome_signal_locations``, for outcomes (a signal that arrives late still finds
    the outcome that answers it).
``outcome_approvals``
    The approver's decisions per outcome, one row per approval signal: an approval covers
    only the returns about signals received before it.

Signals, outcomes and approvals keep ``received_us``, when the hub received them (the Kafka
record's LogAppendTime, or the worker's safe bound: services/outcomes/batch.py): "sent before the outcome" is decided by it, never by the partner-written
``time_us``. Times are microseconds since the epoch (UTC). On SQLite the location tables are ``WITHOUT
ROWID``: each is its primary-key B-tree. :func:`create_schema` makes the tables on a database
not migrated by the audit store (tests, the benchmark).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
)

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

outcome_signals = Table(
    "outcome_signals",
    metadata,
    Column("source", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("signal_type", String, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("partner_kind", String, nullable=False),
    Column("municipality", String, nullable=True),
    Column("strength", Float, nullable=True),
    Column("stackable", Boolean, nullable=False),
    Column("thread", String, nullable=True),
    Column("rules", Text, nullable=False),
    Column("keep_until_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Index("ix_outcome_signals_keep_until_us", "keep_until_us"),
)

outcome_signal_locations = Table(
    "outcome_signal_locations",
    metadata,
    Column("location", String, primary_key=True),
    Column("time_us", BigInteger, primary_key=True),
    Column("source", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("keep_until_us", BigInteger, nullable=False),
    Index("ix_outcome_signal_locations_keep_until_us", "keep_until_us"),
    sqlite_with_rowid=False,
)

outcome_events = Table(
    "outcome_events",
    metadata,
    Column("source", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("signal_type", String, nullable=False),
    Column("outcome_class", String, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("municipality", String, nullable=True),
    Column("data", Text, nullable=False),
    Column("leaves", Text, nullable=False),
    Column("subjects", Text, nullable=False),
    Column("rules", Text, nullable=False),
    Column("basis", Text, nullable=True),
    Column("keep_until_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Index("ix_outcome_events_keep_until_us", "keep_until_us"),
)

outcome_event_locations = Table(
    "outcome_event_locations",
    metadata,
    Column("location", String, primary_key=True),
    Column("time_us", BigInteger, primary_key=True),
    Column("source", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("keep_until_us", BigInteger, nullable=False),
    Index("ix_outcome_event_locations_keep_until_us", "keep_until_us"),
    sqlite_with_rowid=False,
)

outcome_approvals = Table(
    "outcome_approvals",
    metadata,
    Column("outcome_source", String, primary_key=True),
    Column("outcome_signal_id", String, primary_key=True),
    Column("approver", String, primary_key=True),
    Column("decision", String, nullable=False),
    Column("signal_id", String, primary_key=True),
    Column("time_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
)


def create_schema(engine: Engine) -> None:
    """Create the outcome tables that do not exist yet."""
    metadata.create_all(engine)
