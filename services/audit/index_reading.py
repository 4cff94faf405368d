"""Reading what the index holds of each record, for verification: driver-level, page by page.

Per page, two statements in one read transaction with one snapshot (SQLite: a deferred
``BEGIN``; PostgreSQL: ``REPEATABLE READ``): the page's records — hashed fields and stored
searchable columns (the decision time in the form of
:func:`~services.audit.index.moment_text`) — and the subject-index rows of the page's ``seq``
range, aggregated per ``seq`` into a JSON array (unambiguous whatever a tamperer wrote into a
pseudonym; cheaper to hand over and parse than a PostgreSQL ``text[]``) and matched to the
records here by ``seq``: a record gets its rows, and rows of a ``seq`` that has no record are
orphans. A record being appended or purged meanwhile is therefore never half seen. After the last page,
:meth:`IndexReader.tail_orphans` looks for index rows beyond the last record that still have
no record (a record appended since came with its rows).

Rows go straight through the driver cursor of the store's read transaction (as the store's
hot-path writes do, :mod:`services.audit.bulk`): SQLAlchemy's per-row processing would cost
more than the check itself. (One statement with a full outer join would do too, but SQLite
plans it as a nested loop.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import orjson

from services.audit.chain import ChainRecord
from services.audit.index import moment_text

BELOW_ALL = -(2**62)
"""A ``seq`` below every possible one: where the first page's index range starts."""

_RECORDS = (
    "SELECT seq, prev_seq, body, chain_hash, record_id, {moment}, action, result, object, "
    "signal_id, origin, recipient, covenant_id, rule_id FROM audit_records "
    "WHERE seq > {p} ORDER BY seq LIMIT {p}"
)
_LISTED = "SELECT seq, {subjects} FROM audit_subjects WHERE seq > {p} AND seq <= {p} GROUP BY seq"
_TAIL_ORPHANS = (
    "SELECT DISTINCT seq FROM audit_subjects AS listed WHERE seq > {p} AND NOT EXISTS "
    "(SELECT 1 FROM audit_records WHERE audit_records.seq = listed.seq) ORDER BY seq LIMIT {p}"
)
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"


class IndexedPage(NamedTuple):
    """The records of one page, with their index, and the orphans of its ``seq`` range."""

    records: list[ChainRecord]
    orphans: list[int]


class IndexReader:
    """The index-reading statements of one kind of database (``sqlite`` or ``postgresql``)."""

    def __init__(self, dialect: str) -> None:
        self._postgresql = dialect == "postgresql"
        if self._postgresql:
            placeholder = "%s"
            moment = """to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"""
            subjects = "json_agg(pseudonym)::text"
        else:
            placeholder, moment, subjects = "?", '"timestamp"', "json_group_array(pseudonym)"
        self._records = _RECORDS.format(p=placeholder, moment=moment)
        self._listed = _LISTED.format(p=placeholder, subjects=subjects)
        self._tail = _TAIL_ORPHANS.format(p=placeholder)

    def page(self, cursor: Any, after_seq: int, limit: int, subjects_after: int) -> IndexedPage:
        """Up to ``limit`` records above ``after_seq`` in ``seq`` order, each with its stored
        searchable columns and subject-index pseudonyms, and the ``seq`` of index rows above
        ``subjects_after`` (up to the page's last record) that have no record. ``cursor``
        must be in a fresh read transaction."""
        if self._postgresql:
            cursor.execute(_SNAPSHOT)  # both statements below see one snapshot
        cursor.execute(self._records, (after_seq, limit))
        rows = cursor.fetchall()
        if not rows:
            return IndexedPage([], [])
        cursor.execute(self._listed, (subjects_after, rows[-1][0]))
        listed: dict[int, str] = dict(cursor.fetchall())  # seq -> JSON array of pseudonyms
        found = listed.pop
        records = [
            ChainRecord(
                row[0],
                row[1],
                row[4],
                row[2],
                bytes(row[3] or b""),
                row[4:14] if type(row[5]) is str else _with_moment(row[4:14]),
                _pseudonyms(found(row[0], None)),
            )
            for row in rows
        ]
        orphans = sorted(int(seq) for seq in listed)  # rows of no record in the page's range
        return IndexedPage(records, orphans)

    def tail_orphans(self, cursor: Any, after_seq: int, limit: int) -> list[int]:
        """Up to ``limit`` ``seq`` above ``after_seq`` (ascending) that the subject index lists
        but no record has."""
        cursor.execute(self._tail, (after_seq, limit))
        return [int(seq) for (seq,) in cursor.fetchall()]


def _with_moment(columns: tuple[Any, ...]) -> tuple[Any, ...]:
    """:data:`~services.audit.index.INDEX_COLUMNS` whose stored ``timestamp`` is no text
    (SQLite after tampering) with it in a comparable form: a datetime as
    :func:`moment_text`, anything else as a marker that matches nothing."""
    value = columns[1]
    if value is None:
        shown = None
    elif isinstance(value, datetime):
        shown = moment_text(value)
    else:
        shown = f"<{type(value).__name__}>"
    return (columns[0], shown, *columns[2:])


def _pseudonyms(listed: str | None) -> tuple[str, ...]:
    """A record's subject pseudonyms from the JSON array of its index rows (``None``: none)."""
    return () if listed is None else tuple(orjson.loads(listed))
