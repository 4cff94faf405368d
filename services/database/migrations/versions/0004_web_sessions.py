"""Server-side web sessions and the stored results of integrity verifications.

``web_sessions`` holds the SHA-256 of each session token (never the token) with its user and
times, so signing out or expiry really ends a session; ``integrity_runs`` keeps every
verification run from the web, so the integrity page shows the last result without
re-verifying the whole chain on each view.

Frozen on purpose, like ``0001`` and ``0003``: the tables are spelled out here, not imported
from :mod:`services.database.tables.web`. The web module's own ``create_all`` may have made them on a
database used without the audit store, so a table that exists already is left as it is.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOMENT = sa.DateTime(timezone=True)


def _web_sessions() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(), nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.Column("last_seen_at", _MOMENT, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_name"],
            ["web_users.name"],
            name="fk_web_sessions_user_name_web_users",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_web_sessions"),
    )
    op.create_index("ix_web_sessions_user_name", "web_sessions", ["user_name"])


def _integrity_runs() -> None:
    op.create_table(
        "integrity_runs",
        sa.Column("id", _ID, nullable=False),
        sa.Column("requested_by", sa.String(), nullable=False),
        sa.Column("started_at", _MOMENT, nullable=False),
        sa.Column("finished_at", _MOMENT, nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=True),
        sa.Column("records", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_integrity_runs"),
    )
    op.create_index("ix_integrity_runs_state", "integrity_runs", ["state", "id"])


_TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("web_sessions", _web_sessions),
    ("integrity_runs", _integrity_runs),
)


def upgrade() -> None:
    """Create the session and verification tables that ``create_all`` has not made yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop the session and verification tables (everyone is signed out)."""
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
