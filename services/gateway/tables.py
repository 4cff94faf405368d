"""The gateway's tables in the audit database (Alembic revision ``0006``), made ready.

Apart from :mod:`services.gateway.serve` so that ``schakel gateway token issue`` and its kin,
which only read and write tokens, do not import the web server to get at them.
"""

from __future__ import annotations

from sqlalchemy import Engine

from services.audit.store import SqlAuditStore
from services.database.tables.gateway import metadata


def prepare_tables(engine: Engine) -> None:
    """Create or upgrade the audit database's schema, gateway tables included."""
    SqlAuditStore(engine).create_schema()
    metadata.create_all(engine)  # a no-op once revision 0006 made them
