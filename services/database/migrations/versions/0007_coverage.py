"""The NH Drugsalert coverage facts: one row per counted signal, no identifier, no payload.

Frozen on purpose, like ``0001`` and ``0006``: the table is spelled out here, not imported
from :mod:`services.coverage.store`. The coverage store's own ``create_all`` may have made it
on a database used before this revision, so a table that exists already is left as it is.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``coverage_facts`` unless ``create_all`` has made it already."""
    if "coverage_facts" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "coverage_facts",
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("municipality", sa.String(6), nullable=False),
        sa.Column("signal_type", sa.String(), nullable=False),
        sa.Column("category", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("origin", "signal_id", name="pk_coverage_facts"),
    )
    op.create_index(
        "ix_coverage_facts_month", "coverage_facts", ["month", "municipality", "category"]
    )


def downgrade() -> None:
    """Drop the coverage facts (the counts are rebuilt as the worker re-reads the signals)."""
    op.drop_table("coverage_facts")
