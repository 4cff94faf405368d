"""The audit schema as it was when migrations began: records with their hash chain, signed
checkpoints, the subject index and the feed outbox.

Frozen on purpose: it does not import :mod:`services.database.tables.audit`, whose tables describe the
newest revision. Every constraint is named as :data:`services.database.tables.audit.NAMING_CONVENTION`
names it, so later revisions can refer to them on SQLite and PostgreSQL alike.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the four audit tables and their indexes."""
    op.create_table(
        "audit_records",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("timestamp", _MOMENT, nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("result", sa.String(), nullable=False),
        sa.Column("object", sa.String(), nullable=True),
        sa.Column("signal_id", sa.String(), nullable=True),
        sa.Column("origin", sa.String(), nullable=True),
        sa.Column("recipient", sa.String(), nullable=True),
        sa.Column("covenant_id", sa.String(), nullable=True),
        sa.Column("rule_id", sa.String(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("prev_seq", _SEQ, nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_records"),
        sa.UniqueConstraint("record_id", name="uq_audit_records_record_id"),
        sqlite_autoincrement=True,
    )
    for name, columns in (
        ("ix_audit_records_timestamp", ["timestamp"]),
        ("ix_audit_records_result", ["result", "action", "timestamp"]),
        ("ix_audit_records_origin", ["origin", "timestamp"]),
        ("ix_audit_records_recipient", ["recipient", "timestamp"]),
        ("ix_audit_records_object", ["object", "timestamp"]),
        ("ix_audit_records_covenant", ["covenant_id", "rule_id", "timestamp"]),
        ("ix_audit_records_signal_id", ["signal_id"]),
    ):
        op.create_index(name, "audit_records", columns)

    op.create_table(
        "audit_checkpoints",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoints"),
    )

    op.create_table(
        "audit_subjects",
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("seq", _SEQ, nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["audit_records.seq"],
            name="fk_audit_subjects_seq_audit_records",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pseudonym", "seq", name="pk_audit_subjects"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_audit_subjects_seq", "audit_subjects", ["seq"])

    op.create_table(
        "feed_outbox",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("exchange_id", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=True),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=True),
        sa.Column("consumed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_feed_outbox"),
        sa.UniqueConstraint("exchange_id", name="uq_feed_outbox_exchange_id"),
    )
    op.create_index(
        "ix_feed_outbox_consumption",
        "feed_outbox",
        ["recipient", "consumed", "kafka_partition", "kafka_offset"],
    )
    op.create_index("ix_feed_outbox_pending", "feed_outbox", ["consumed", "seq"])


def downgrade() -> None:
    """Drop the audit tables (and with them every audit record: only for empty databases)."""
    op.drop_table("feed_outbox")
    op.drop_table("audit_subjects")
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_records")
