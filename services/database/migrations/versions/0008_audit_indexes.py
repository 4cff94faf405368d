"""Fewer indexes on the audit tables: cheaper appends, every product query still indexed.

* ``ix_audit_records_signal_id`` goes: no query of the product searches records by signal id
  (only :meth:`AuditStore.count`, which tests use), yet every append paid for it.
* ``ix_audit_records_result`` (``result, action, timestamp``) goes: ``result`` has three
  values, so an equality on it alone selects a third or more of the log and a scan in ``seq``
  order finds a page sooner; ``action`` is never searched; with a period the search takes
  ``ix_audit_records_timestamp``. The coverage volumes used it for ``result IN (…)`` and read
  nearly the whole index; they now take the timestamp index.
* The foreign key ``audit_subjects.seq → audit_records.seq`` (``ON DELETE CASCADE``) goes: the
  store writes subject rows only in the transaction that writes their record, and the purge
  deletes them itself before the records. On PostgreSQL the key was a trigger per subject row
  (it nearly doubled the cost of copying them); on SQLite a look-up per row. The index on
  ``audit_subjects.seq`` stays: the purge deletes by it.

The plans before and after, per query, are in docs/performance.md (audit store section) and
checked by tests/audit/test_query_plans.py.

Works on databases made by an older ``create_all`` as well: an index or key that is not there
is not dropped. On SQLite a foreign key cannot be dropped in place, so ``audit_subjects`` is
rebuilt (``WITHOUT ROWID`` kept); that copies the subject index once (seconds per million).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_DROPPED_INDEXES = (
    ("ix_audit_records_result", ["result", "action", "timestamp"]),
    ("ix_audit_records_signal_id", ["signal_id"]),
)
_FK = "fk_audit_subjects_seq_audit_records"
_REBUILT = "audit_subjects_0008"


def upgrade() -> None:
    """Drop the two unused indexes and the subject index's foreign key."""
    bind = op.get_bind()
    present = {index["name"] for index in sa.inspect(bind).get_indexes("audit_records")}
    for name, _ in _DROPPED_INDEXES:
        if name in present:
            op.drop_index(name, table_name="audit_records")
    if not _has_foreign_key(bind):
        return
    if bind.dialect.name == "sqlite":
        _rebuild_subjects(with_foreign_key=False)
    else:
        op.drop_constraint(_FK, "audit_subjects", type_="foreignkey")


def downgrade() -> None:
    """Put the indexes and the foreign key back (subject rows whose record is gone — left by
    tampering, since the purge deletes both — are dropped first, or the key would refuse)."""
    bind = op.get_bind()
    present = {index["name"] for index in sa.inspect(bind).get_indexes("audit_records")}
    for name, columns in _DROPPED_INDEXES:
        if name not in present:
            op.create_index(name, "audit_records", columns)
    if _has_foreign_key(bind):
        return
    op.execute(
        "DELETE FROM audit_subjects WHERE NOT EXISTS "
        "(SELECT 1 FROM audit_records WHERE audit_records.seq = audit_subjects.seq)"
    )
    if bind.dialect.name == "sqlite":
        _rebuild_subjects(with_foreign_key=True)
    else:
        op.create_foreign_key(
            _FK, "audit_subjects", "audit_records", ["seq"], ["seq"], ondelete="CASCADE"
        )


def _has_foreign_key(bind: sa.Connection) -> bool:
    keys = sa.inspect(bind).get_foreign_keys("audit_subjects")
    return any(key["referred_table"] == "audit_records" for key in keys)


def _rebuild_subjects(*, with_foreign_key: bool) -> None:
    """SQLite: copy ``audit_subjects`` into a new table with or without the key, swap it in."""
    constraints: list[sa.Constraint] = [
        sa.PrimaryKeyConstraint("pseudonym", "seq", name="pk_audit_subjects")
    ]
    if with_foreign_key:
        constraints.append(
            sa.ForeignKeyConstraint(["seq"], ["audit_records.seq"], name=_FK, ondelete="CASCADE")
        )
    op.create_table(
        _REBUILT,
        sa.Column("pseudonym", sa.String(), nullable=False),
        sa.Column("seq", _SEQ, nullable=False),
        *constraints,
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO {_REBUILT} (pseudonym, seq) "  # noqa: S608 - a constant table name
        "SELECT pseudonym, seq FROM audit_subjects ORDER BY pseudonym, seq"
    )
    op.drop_table("audit_subjects")  # and with it ix_audit_subjects_seq
    op.rename_table(_REBUILT, "audit_subjects")
    op.create_index("ix_audit_subjects_seq", "audit_subjects", ["seq"])
