"""The audit store: every routing decision as an audit record, and the feed outbox.

* :mod:`services.audit.model` — :class:`OutboxEntry` and the :class:`AuditStore` interface;
* :mod:`services.audit.store` — :class:`SqlAuditStore` on SQLite or PostgreSQL;
* :mod:`services.audit.bulk` — its hot-path writes as driver-level ``executemany`` / ``COPY``;
* :mod:`services.audit.rows` — records and outbox entries as table rows, for every store;
* :mod:`services.database.engine` — :func:`make_engine` from ``$SCHAKEL_DATABASE_URL``;
* :mod:`services.database.tables.audit` — the tables;
* :mod:`services.database.migrate` — ``alembic upgrade head`` on opening (migrations in
  ``services/database/migrations``), adopting databases made before migrations;
* :mod:`services.audit.testing` — :class:`MemoryAuditStore` and ``MemoryWitness``, the
  test doubles (their tables in :mod:`services.audit.memory_tables`);
* :mod:`services.audit.chain` — the hash chain every record is linked into (byte encoding);
* :mod:`services.audit.checkpoint` — signed checkpoints of the chain head (statement bytes);
* :mod:`services.audit.checkpointer` — when stores make checkpoints, publishing to a witness;
* :mod:`services.audit.witness` — checkpoints kept outside the database (JSON-lines file);
* :mod:`services.audit.verify` — recomputing the chain and locating the first tampering;
* :mod:`services.audit.index` — what the searchable columns and the subject index must hold
  (derived from the hashed record), and what vouches for every column of every table;
* :mod:`services.audit.verification` — the one verification of a database (CLI, web, metrics);
* :mod:`services.audit.export` — self-contained bundles for outside auditors;
* :mod:`services.audit.reading` — streaming the chain out of a store;
* :mod:`services.audit.upgrade` — chaining a database from before the hash chain.

Records never contain raw identifiers (the core guarantees that); the store neither checks
nor logs their bodies.
"""

from __future__ import annotations

from services.audit.errors import AuditStoreError
from services.audit.model import AUDIT_FILTERS, AuditStore, OutboxEntry

__all__ = ["AUDIT_FILTERS", "AuditStore", "AuditStoreError", "OutboxEntry"]
