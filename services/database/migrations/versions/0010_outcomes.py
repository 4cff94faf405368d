"""The outcome tables: the matching index of signals and outcomes by location, and approvals.

Frozen on purpose, like ``0005`` and ``0007``: the tables are spelled out here, not imported
from :mod:`services.database.tables.outcomes`. That module's own ``create_all`` may have made them on a
database used without the audit store (tests, the benchmark), so a table that exists already is
left as it is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _signals() -> None:
    op.create_table(
        "outcome_signals",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("signal_type", sa.String(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("partner_kind", sa.String(), nullable=False),
        sa.Column("municipality", sa.String(), nullable=True),
        sa.Column("strength", sa.Float(), nullable=True),
        sa.Column("stackable", sa.Boolean(), nullable=False),
        sa.Column("thread", sa.String(), nullable=True),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("keep_until_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "signal_id", name="pk_outcome_signals"),
    )
    op.create_index("ix_outcome_signals_keep_until_us", "outcome_signals", ["keep_until_us"])


def _locations(table: str) -> Callable[[], None]:
    def create() -> None:
        op.create_table(
            table,
            sa.Column("location", sa.String(), nullable=False),
            sa.Column("time_us", sa.BigInteger(), nullable=False),
            sa.Column("source", sa.String(), nullable=False),
            sa.Column("signal_id", sa.String(), nullable=False),
            sa.Column("keep_until_us", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint(
                "location", "time_us", "source", "signal_id", name=f"pk_{table}"
            ),
            sqlite_with_rowid=False,
        )
        op.create_index(f"ix_{table}_keep_until_us", table, ["keep_until_us"])

    return create


def _events() -> None:
    op.create_table(
        "outcome_events",
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("signal_type", sa.String(), nullable=False),
        sa.Column("outcome_class", sa.String(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.Column("municipality", sa.String(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("leaves", sa.Text(), nullable=False),
        sa.Column("subjects", sa.Text(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("basis", sa.Text(), nullable=True),
        sa.Column("keep_until_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "signal_id", name="pk_outcome_events"),
    )
    op.create_index("ix_outcome_events_keep_until_us", "outcome_events", ["keep_until_us"])


def _approvals() -> None:
    op.create_table(
        "outcome_approvals",
        sa.Column("outcome_source", sa.String(), nullable=False),
        sa.Column("outcome_signal_id", sa.String(), nullable=False),
        sa.Column("approver", sa.String(), nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "outcome_source", "outcome_signal_id", "approver", name="pk_outcome_approvals"
        ),
    )


_TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("outcome_signals", _signals),
    ("outcome_signal_locations", _locations("outcome_signal_locations")),
    ("outcome_events", _events),
    ("outcome_event_locations", _locations("outcome_event_locations")),
    ("outcome_approvals", _approvals),
)


def upgrade() -> None:
    """Create the outcome tables that ``create_all`` has not made yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop the outcome tables (the index is rebuilt as the worker re-reads the signals)."""
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
