"""Outcome matching by the hub's receipt time; several approvals per outcome.

``outcome_signals``, ``outcome_events`` and ``outcome_approvals`` get ``received_us``: when
the hub received the entry (the Kafka record's timestamp). "Sent before the outcome" is
decided by it, never by the partner-written ``time_us`` (a backdated probe is received after
the outcome). Rows stored before this revision get their own ``time_us``, the best the hub
knows about them. ``outcome_approvals`` keys every approval signal (its ``signal_id`` joins
the primary key): an approval covers only the returns about signals received before it, so a
later approval must be storable next to an earlier one.

Frozen on purpose: columns spelled out here, not imported from
:mod:`services.database.tables.outcomes`. On a database whose tables ``create_all`` made with these
columns already, each step is skipped.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("outcome_signals", "outcome_events", "outcome_approvals")
_APPROVAL_KEY = ("outcome_source", "outcome_signal_id", "approver")


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    """Add ``received_us`` (filled from ``time_us``) and key approvals per signal."""
    for table in _TABLES:
        if "received_us" in _columns(table):
            continue
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("received_us", sa.BigInteger(), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET received_us = time_us"))  # noqa: S608 - fixed names
        with op.batch_alter_table(table) as batch:
            batch.alter_column("received_us", existing_type=sa.BigInteger(), nullable=False)
    key = sa.inspect(op.get_bind()).get_pk_constraint("outcome_approvals")
    if "signal_id" not in key["constrained_columns"]:
        with op.batch_alter_table("outcome_approvals", recreate="always") as batch:
            batch.drop_constraint("pk_outcome_approvals", type_="primary")
            batch.create_primary_key("pk_outcome_approvals", [*_APPROVAL_KEY, "signal_id"])


def downgrade() -> None:
    """Back to one approval per outcome and approver (the first received is kept) and no
    receipt times."""
    op.execute(
        sa.text(
            "DELETE FROM outcome_approvals WHERE EXISTS (SELECT 1 FROM outcome_approvals a "
            "WHERE a.outcome_source = outcome_approvals.outcome_source "
            "AND a.outcome_signal_id = outcome_approvals.outcome_signal_id "
            "AND a.approver = outcome_approvals.approver "
            "AND (a.received_us < outcome_approvals.received_us OR "
            "(a.received_us = outcome_approvals.received_us "
            "AND a.signal_id < outcome_approvals.signal_id)))"
        )
    )
    with op.batch_alter_table("outcome_approvals", recreate="always") as batch:
        batch.drop_constraint("pk_outcome_approvals", type_="primary")
        batch.create_primary_key("pk_outcome_approvals", list(_APPROVAL_KEY))
    for table in reversed(_TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("received_us")
