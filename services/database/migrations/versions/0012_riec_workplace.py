"""The RIEC workplace's tables: items as the feed delivered them, their history, case files
and their entries, and the joint barrier plan (issue 14).

Frozen on purpose, like ``0005``, ``0007`` and ``0010``: the tables are spelled out here, not
imported from :mod:`services.database.tables.riec`. That module's own ``create_all`` may have made them
on a database used without the audit store (tests, the benchmark), so a table that exists
already is left as it is.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOMENT = sa.DateTime(timezone=True)


def _items() -> None:
    op.create_table(
        "riec_items",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("covenant_id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("signal_type", sa.String(), nullable=False),
        sa.Column("received_at", _MOMENT, nullable=False),
        sa.Column("municipality", sa.String(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("steps", sa.String(), nullable=False),
        sa.Column("alert", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("pseudonyms", sa.Text(), nullable=False),
        sa.Column("locations", sa.Text(), nullable=False),
        sa.Column("keep_until", _MOMENT, nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=True),
        sa.Column("case_id", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_riec_items"),
    )
    op.create_index("ix_riec_items_queue", "riec_items", ["recipient", "state", "received_at"])
    op.create_index("ix_riec_items_received", "riec_items", ["recipient", "received_at"])
    op.create_index("ix_riec_items_case_id", "riec_items", ["case_id"])
    op.create_index("ix_riec_items_keep_until", "riec_items", ["keep_until"])


def _item_events() -> None:
    op.create_table(
        "riec_item_events",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("item_id", sa.String(), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_riec_item_events"),
        sa.UniqueConstraint("record_id", name="uq_riec_item_events_record_id"),
    )
    op.create_index("ix_riec_item_events_item_id", "riec_item_events", ["item_id", "id"])


def _cases() -> None:
    op.create_table(
        "riec_cases",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("covenant_id", sa.String(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("opened_by", sa.String(), nullable=False),
        sa.Column("opened_at", _MOMENT, nullable=False),
        sa.Column("keep_until", _MOMENT, nullable=False),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("closed_at", _MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_riec_cases"),
    )
    op.create_index("ix_riec_cases_recipient", "riec_cases", ["recipient", "opened_at"])
    op.create_index("ix_riec_cases_keep_until", "riec_cases", ["keep_until"])


def _case_entries() -> None:
    op.create_table(
        "riec_case_entries",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("author", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_riec_case_entries"),
        sa.UniqueConstraint("record_id", name="uq_riec_case_entries_record_id"),
    )
    op.create_index("ix_riec_case_entries_case_id", "riec_case_entries", ["case_id", "id"])


def _barriers() -> None:
    op.create_table(
        "riec_barriers",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("partner", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("municipality", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("raised_by", sa.String(), nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_riec_barriers"),
    )
    op.create_index("ix_riec_barriers_step", "riec_barriers", ["model", "step"])


_TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("riec_items", _items),
    ("riec_item_events", _item_events),
    ("riec_cases", _cases),
    ("riec_case_entries", _case_entries),
    ("riec_barriers", _barriers),
)


def upgrade() -> None:
    """Create the workplace tables that ``create_all`` has not made yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop the workplace tables (their contents are lost: cases, notes, the barrier plan)."""
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
