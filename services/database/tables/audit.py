"""The audit tables, as SQLAlchemy Core tables that work on SQLite and PostgreSQL.

``audit_records``
    One row per audit record. ``seq`` numbers rows in insertion order (never reused, so the
    hash chain can follow it); ``record_id`` makes writing idempotent; the columns privacy
    officers search by are indexed, each together with ``timestamp`` so a search can be
    narrowed to a period (``result`` and ``signal_id`` are not: a scan in ``seq`` order or the
    timestamp index serves them better than an index per append would, see revision ``0008``);
    ``body`` is the whole record as canonical JSON (sorted keys).
    ``prev_seq`` and ``chain_hash`` link the row into the hash chain (:mod:`services.audit.chain`):
    the ``seq`` of the row before it and SHA-256 over that row's hash and this row.
``audit_checkpoints``
    The signed checkpoints (:mod:`services.audit.checkpoint`): the chain head at ``seq``,
    signed at ``created_at`` by the key ``key_id``.
``audit_subjects``
    ``(pseudonym, seq)`` for every hub-internal pseudonym a record is about: the index for
    access requests (AVG art. 15), which go by pseudonym, never by raw identifier. On SQLite
    the table *is* its primary-key index (``WITHOUT ROWID``), one B-tree less per insert; the
    index on ``seq`` serves the purge, which deletes a record's subject rows itself (there is
    no foreign key to ``audit_records`` since revision ``0008``: the store writes subject rows
    only together with their record, and the key cost a trigger or look-up per row).
``audit_purges``
    The signed purge commitments (:mod:`services.audit.retention`): records up to ``seq`` were
    deleted for retention, the chain hash at ``seq`` is the anchor verification starts from,
    ``records`` were deleted with decision times from ``first_timestamp`` to
    ``last_timestamp``; signed at ``created_at`` by the key ``key_id``.
``feed_outbox``
    One row per feed message until it has been consumed: the message itself, where the broker
    put it (``kafka_partition``, ``kafka_offset``) and whether the recipient consumed it.
    ``seq`` keeps insertion order, so messages are produced again in their original order.

Every constraint and index has a stable name (explicit, or from :data:`NAMING_CONVENTION`),
so Alembic migrations can refer to them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

Seq = BigInteger().with_variant(Integer(), "sqlite")
"""64-bit on PostgreSQL; ``INTEGER`` on SQLite, where only that makes the rowid the key."""

Moment = DateTime(timezone=True)
"""``timestamptz`` on PostgreSQL; on SQLite a fixed-width UTC text that sorts in time order."""

audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("record_id", String, nullable=False, unique=True),
    Column("timestamp", Moment, nullable=False),
    Column("action", String, nullable=False),
    Column("result", String, nullable=False),
    Column("object", String),
    Column("signal_id", String),
    Column("origin", String),
    Column("recipient", String),
    Column("covenant_id", String),
    Column("rule_id", String),
    Column("body", Text, nullable=False),
    Column("prev_seq", Seq, nullable=False),
    Column("chain_hash", LargeBinary, nullable=False),
    Index("ix_audit_records_timestamp", "timestamp"),
    Index("ix_audit_records_origin", "origin", "timestamp"),
    Index("ix_audit_records_recipient", "recipient", "timestamp"),
    Index("ix_audit_records_object", "object", "timestamp"),
    Index("ix_audit_records_covenant", "covenant_id", "rule_id", "timestamp"),
    sqlite_autoincrement=True,
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("chain_hash", LargeBinary, nullable=False),
    Column("created_at", Moment, nullable=False),
    Column("key_id", String, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

audit_purges = Table(
    "audit_purges",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=False),
    Column("chain_hash", LargeBinary, nullable=False),
    Column("records", BigInteger, nullable=False),
    Column("first_timestamp", Moment, nullable=False),
    Column("last_timestamp", Moment, nullable=False),
    Column("created_at", Moment, nullable=False),
    Column("key_id", String, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

audit_subjects = Table(
    "audit_subjects",
    metadata,
    Column("pseudonym", String, primary_key=True),
    Column("seq", Seq, primary_key=True, index=True),
    sqlite_with_rowid=False,
)

feed_outbox = Table(
    "feed_outbox",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("exchange_id", String, nullable=False, unique=True),
    Column("recipient", String, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", Moment, nullable=False),
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Column("consumed", Boolean, nullable=False, server_default=false()),
    Index("ix_feed_outbox_consumption", "recipient", "consumed", "kafka_partition", "kafka_offset"),
    Index("ix_feed_outbox_pending", "consumed", "seq"),
)
