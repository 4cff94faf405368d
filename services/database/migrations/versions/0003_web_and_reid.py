"""The web workplace's tables (users, their scopes, the access log) and the re-identification
requests and their events.

Frozen on purpose, like ``0001``: the tables are spelled out here, not imported from
:mod:`services.database.tables.web` or :mod:`services.reid.store`. Before this revision those modules
made the tables with ``create_all``, so a table that already exists is left as it is (its
shape is the one spelled out here) and only missing ones are created.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOMENT = sa.DateTime(timezone=True)


def _web_users() -> None:
    op.create_table(
        "web_users",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_web_users"),
    )


def _web_user_scopes() -> None:
    op.create_table(
        "web_user_scopes",
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["web_users.name"],
            name="fk_web_user_scopes_user_name_web_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_name", "kind", "value", name="pk_web_user_scopes"),
    )


def _access_log() -> None:
    op.create_table(
        "access_log",
        sa.Column("id", _ID, nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("route", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_access_log"),
    )
    op.create_index("ix_access_log_user_name", "access_log", ["user_name", "at"])
    op.create_index("ix_access_log_at", "access_log", ["at"])


def _reid_requests() -> None:
    op.create_table(
        "reid_requests",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("requester", sa.String(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("covenant_id", sa.String(), nullable=False),
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("field", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("source_record", sa.String(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("case_ref", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("requested_at", _MOMENT, nullable=False),
        sa.Column("expires_at", _MOMENT, nullable=False),
        sa.Column("decided_by", sa.String(), nullable=True),
        sa.Column("decided_at", _MOMENT, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("revealed_at", _MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reid_requests"),
    )
    op.create_index("ix_reid_requests_state", "reid_requests", ["state", "requested_at"])
    op.create_index("ix_reid_requests_requester", "reid_requests", ["requester", "requested_at"])


def _reid_events() -> None:
    op.create_table(
        "reid_events",
        sa.Column("id", _ID, nullable=False),
        sa.Column("request_id", sa.String(), nullable=False),
        sa.Column("at", _MOMENT, nullable=False),
        sa.Column("step", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("record_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["reid_requests.id"],
            name="fk_reid_events_request_id_reid_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reid_events"),
        sa.UniqueConstraint("record_id", name="uq_reid_events_record_id"),
    )
    op.create_index("ix_reid_events_request_id", "reid_events", ["request_id"])


_TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("web_users", _web_users),
    ("web_user_scopes", _web_user_scopes),
    ("access_log", _access_log),
    ("reid_requests", _reid_requests),
    ("reid_events", _reid_events),
)


def upgrade() -> None:
    """Create the web and re-identification tables that ``create_all`` has not made yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop the web and re-identification tables (users, access log and requests go too)."""
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
