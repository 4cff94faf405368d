"""Sign-in throttling: failed sign-ins per account and per client, shared by web workers.

``web_sign_in_throttle`` holds, per HMAC of an account name or a client address, how many
sign-ins failed in a row, when the last did and until when sign-in there is blocked
(:mod:`services.web.throttle`). Frozen on purpose, like ``0004``: the table is spelled out
here; the web module's own ``create_all`` may have made it already, and then it is left as it
is.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MOMENT = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create ``web_sign_in_throttle`` unless ``create_all`` has made it already."""
    if "web_sign_in_throttle" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "web_sign_in_throttle",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", _MOMENT, nullable=False),
        sa.Column("blocked_until", _MOMENT, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_web_sign_in_throttle"),
    )
    op.create_index(
        "ix_web_sign_in_throttle_last_failure_at", "web_sign_in_throttle", ["last_failure_at"]
    )


def downgrade() -> None:
    """Drop the throttle (counts of failed sign-ins start over)."""
    op.drop_table("web_sign_in_throttle")
