"""The gateway's tables, in their own metadata next to the audit tables (revision ``0006``).

``gateway_tokens``
    One row per API token: a public ``token_id`` (shown by ``schakel gateway token list``), who
    it belongs to (``kind`` ``partner`` or ``recipient`` and the ``principal`` name), the
    SHA-256 of the whole token (the token itself is shown once, when issued, and never stored),
    and when it was issued and revoked.
``gateway_accepted``
    The idempotency record: one row per ``(partner, signal_id)`` the gateway accepted (or is
    producing right now, ``state`` ``pending``), with the SHA-256 of the envelope, so a re-send
    gets the same answer without a second produce and a re-used id with other content is
    refused. Rows older than the retention window are pruned, which keeps the table bounded.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table

from services.database.tables.naming import NAMING_CONVENTION

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_MOMENT = DateTime(timezone=True)

gateway_tokens = Table(
    "gateway_tokens",
    metadata,
    Column("token_id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("principal", String, nullable=False),
    Column("token_hash", String, nullable=False),
    Column("created_at", _MOMENT, nullable=False),
    Column("revoked_at", _MOMENT),
    Index("ix_gateway_tokens_principal", "kind", "principal"),
)

gateway_accepted = Table(
    "gateway_accepted",
    metadata,
    Column("partner", String, primary_key=True),
    Column("signal_id", String, primary_key=True),
    Column("digest", String, nullable=False),
    Column("state", String, nullable=False),
    Column("claimed_at", _MOMENT, nullable=False),
    Index("ix_gateway_accepted_claimed_at", "claimed_at"),
)
