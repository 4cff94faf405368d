"""The audit store: every routing decision as an audit record, and the feed outbox.

* :mod:`services.audit.model` — :class:`OutboxEntry` and the :class:`AuditStore` interface;
* :mod:`services.audit.store` — :class:`SqlAuditStore` on SQLite or PostgreSQL;
* :mod:`services.audit.engine` — :func:`make_engine` from ``$SCHAKEL_DATABASE_URL``;
* :mod:`services.audit.schema` — the tables;
* :mod:`services.audit.testing` — :class:`MemoryAuditStore`, the test double.

Records never contain raw identifiers (the core guarantees that); the store neither checks
nor logs their bodies.
"""

from __future__ import annotations

from services.audit.errors import AuditStoreError
from services.audit.model import AUDIT_FILTERS, AuditStore, OutboxEntry

__all__ = ["AUDIT_FILTERS", "AuditStore", "AuditStoreError", "OutboxEntry"]
