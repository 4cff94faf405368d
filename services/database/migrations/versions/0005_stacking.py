"""The stacking (IIPSy) tables: tracked locations, their evidence, aliases and alerts.

Frozen on purpose, like ``0001``, ``0003`` and ``0004``: the tables are spelled out here, not
imported from :mod:`services.database.tables.stacking`. That module's own ``create_all`` may have made
them on a database used without the audit store (tests, the benchmark), so a table that
exists already is left as it is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _locations() -> None:
    op.create_table(
        "stacking_locations",
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("municipality", sa.String(), nullable=False),
        sa.Column("locator", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("location", name="pk_stacking_locations"),
        sqlite_with_rowid=False,
    )


def _evidence() -> None:
    op.create_table(
        "stacking_evidence",
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("partner_kind", sa.String(), nullable=False),
        sa.Column("signal_type", sa.String(), nullable=False),
        sa.Column("barrier_steps", sa.Text(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("location", "source", "signal_id", name="pk_stacking_evidence"),
        sqlite_with_rowid=False,
    )


def _aliases() -> None:
    op.create_table(
        "stacking_aliases",
        sa.Column("alias", sa.String(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("alias", name="pk_stacking_aliases"),
        sqlite_with_rowid=False,
    )


def _alerts() -> None:
    op.create_table(
        "stacking_alerts",
        sa.Column("alert_id", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("location", sa.String(), nullable=False),
        sa.Column("municipality", sa.String(), nullable=False),
        sa.Column("locator", sa.String(), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("signal_types", sa.Text(), nullable=False),
        sa.Column("barrier_steps", sa.Text(), nullable=False),
        sa.Column("partner_kinds", sa.Text(), nullable=False),
        sa.Column("evidence_keys", sa.Text(), nullable=False),
        sa.Column("first_seen_us", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_us", sa.BigInteger(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("raised_at_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_us", sa.BigInteger(), nullable=False),
        sa.Column("published", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", name="pk_stacking_alerts"),
    )
    op.create_index("ix_stacking_alerts_location", "stacking_alerts", ["location"])
    op.create_index("ix_stacking_alerts_published", "stacking_alerts", ["published"])
    op.create_index("ix_stacking_alerts_municipality", "stacking_alerts", ["municipality", "score"])


_TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("stacking_locations", _locations),
    ("stacking_evidence", _evidence),
    ("stacking_aliases", _aliases),
    ("stacking_alerts", _alerts),
)


def upgrade() -> None:
    """Create the stacking tables that ``create_all`` has not made yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop the stacking tables (evidence and alerts go too)."""
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
