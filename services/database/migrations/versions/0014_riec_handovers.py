"""The RIEC workplace's hand-overs: staged with their case entry before the signal is
published, marked done after, so a crash between publishing and recording leaves neither a
published hand-over without its entry nor an entry for one never published (issue 14).

Frozen on purpose: the table is spelled out here, not imported from
:mod:`services.database.tables.riec`; one that ``create_all`` made already is left as it is.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``riec_handovers`` unless it exists."""
    if sa.inspect(op.get_bind()).has_table("riec_handovers"):
        return
    op.create_table(
        "riec_handovers",
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("measure", sa.String(), nullable=False),
        sa.Column("municipality", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("signal_id", name="pk_riec_handovers"),
    )
    op.create_index("ix_riec_handovers_case_id", "riec_handovers", ["case_id"])
    op.create_index("ix_riec_handovers_state", "riec_handovers", ["state"])


def downgrade() -> None:
    """Drop it (staged hand-overs are lost: finish them first)."""
    op.drop_table("riec_handovers")
