"""The RIEC workplace's pending audit records: each action stages its audit record in its own
transaction, and the record leaves the table once the audit store has it (issue 14: a failed
audit write must not leave a change without its record).

Frozen on purpose: the table is spelled out here, not imported from
:mod:`services.database.tables.riec`; one that ``create_all`` made already is left as it is.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create ``riec_audit_pending`` unless it exists."""
    if sa.inspect(op.get_bind()).has_table("riec_audit_pending"):
        return
    op.create_table(
        "riec_audit_pending",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_riec_audit_pending"),
        sa.UniqueConstraint("record_id", name="uq_riec_audit_pending_record_id"),
    )


def downgrade() -> None:
    """Drop it (pending records are lost: run the workplace until it is empty first)."""
    op.drop_table("riec_audit_pending")
