"""Purge commitments: the signed anchors that retention purges leave behind.

Frozen on purpose, like ``0001``: the table is spelled out here, not imported from
:mod:`services.database.tables.audit`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``audit_purges``."""
    op.create_table(
        "audit_purges",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("chain_hash", sa.LargeBinary(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("first_timestamp", _MOMENT, nullable=False),
        sa.Column("last_timestamp", _MOMENT, nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_purges"),
    )


def downgrade() -> None:
    """Drop ``audit_purges`` (its anchors go with it: verify a purged log before this)."""
    op.drop_table("audit_purges")
