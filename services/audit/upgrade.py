"""Bringing an audit database from before the hash chain up to date.

Databases created before records were chained lack the ``prev_seq`` and ``chain_hash``
columns. :func:`chain_unchained` adds them and chains the existing records in ``seq`` order,
in the schema-upgrading transaction, when :mod:`services.database.migrate` adopts a database made
before migrations. The chain then vouches for those records only as they were at the upgrade,
which is all that can be said for a log that was not chained when they were written. (The
added columns stay nullable: SQLite cannot add a ``NOT NULL`` column without a default, and
rebuilding ``audit_records`` at adoption, before revision 0008 dropped the subject rows'
foreign key, would have cascade-deleted its subject index.)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, inspect, select, text, update

from services.audit.chain import GENESIS, link
from services.database.tables.audit import (
    audit_checkpoints,
    audit_records,
    audit_subjects,
    feed_outbox,
)

_COLUMN_TYPES = {
    "sqlite": ("INTEGER", "BLOB"),
    "postgresql": ("BIGINT", "BYTEA"),
}

_set_link = (
    update(audit_records)
    .where(audit_records.c.seq == bindparam("u_seq"))
    .values(prev_seq=bindparam("u_prev"), chain_hash=bindparam("u_hash"))
)


def chain_unchained(connection: Connection) -> int:
    """Add the chain columns to an ``audit_records`` table without them and chain its rows;
    return how many rows were chained (0 when the table was up to date)."""
    columns = {column["name"] for column in inspect(connection).get_columns("audit_records")}
    if "chain_hash" in columns:
        return 0
    integer, binary = _COLUMN_TYPES[connection.dialect.name]
    if "prev_seq" not in columns:
        connection.execute(text(f"ALTER TABLE audit_records ADD COLUMN prev_seq {integer}"))
    connection.execute(text(f"ALTER TABLE audit_records ADD COLUMN chain_hash {binary}"))
    ordered = select(audit_records.c.seq, audit_records.c.record_id, audit_records.c.body)
    previous, prev_seq = GENESIS, 0
    params: list[dict[str, Any]] = []
    for seq, record_id, body in connection.execute(ordered.order_by(audit_records.c.seq)):
        previous = link(previous, seq, prev_seq, record_id, body)
        params.append({"u_seq": seq, "u_prev": prev_seq, "u_hash": previous})
        prev_seq = seq
    if params:
        connection.execute(_set_link, params)
    return len(params)


_ADOPTED_TABLES = (audit_checkpoints, audit_subjects, feed_outbox)
"""Tables of revision ``0001`` that an adopted database may lack (unchanged since then; a
revision that changes one of them must freeze its ``0001`` form here)."""


def adopt_unversioned(connection: Connection) -> bool:
    """Bring a database made before migrations to revision ``0001``; False if it has no audit
    tables at all (a new database, for the migrations to create)."""
    tables = set(inspect(connection).get_table_names())
    if "audit_records" not in tables:
        return False
    chain_unchained(connection)
    for table in _ADOPTED_TABLES:
        if table.name not in tables:
            table.create(connection)
    return True
