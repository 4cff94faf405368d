"""The HTTPS gateway's tables: API tokens (hashes only) and the accepted signal ids.

Frozen on purpose, like ``0001`` and ``0003``: the tables are spelled out here, not imported
from :mod:`services.database.tables.gateway`. The gateway's own ``create_all`` may have made them on a
database used before this revision, so a table that exists already is left as it is.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MOMENT = sa.DateTime(timezone=True)


def _gateway_tokens() -> None:
    op.create_table(
        "gateway_tokens",
        sa.Column("token_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False),
        sa.Column("created_at", _MOMENT, nullable=False),
        sa.Column("revoked_at", _MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_gateway_tokens"),
    )
    op.create_index("ix_gateway_tokens_principal", "gateway_tokens", ["kind", "principal"])


def _gateway_accepted() -> None:
    op.create_table(
        "gateway_accepted",
        sa.Column("partner", sa.String(), nullable=False),
        sa.Column("signal_id", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("claimed_at", _MOMENT, nullable=False),
        sa.PrimaryKeyConstraint("partner", "signal_id", name="pk_gateway_accepted"),
    )
    op.create_index("ix_gateway_accepted_claimed_at", "gateway_accepted", ["claimed_at"])


_TABLES: tuple[tuple[str, Callable[[], None]], ...] = (
    ("gateway_tokens", _gateway_tokens),
    ("gateway_accepted", _gateway_accepted),
)


def upgrade() -> None:
    """Create the gateway tables that ``create_all`` has not made yet."""
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in _TABLES:
        if name not in existing:
            create()


def downgrade() -> None:
    """Drop the gateway tables (every API token stops working)."""
    for name, _ in reversed(_TABLES):
        op.drop_table(name)
