"""Turning audit records and outbox entries into table rows, the same way for every store.

Both stores validate and convert through these functions before they write anything, so a
bad record anywhere in a batch fails the whole batch before the first write, and the memory
double behaves exactly like the SQL store. The work per record is kept small: one ``orjson``
serialisation (sorted keys, so the body is canonical for the hash chain) and a few lookups.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, NoReturn, cast

import orjson

from services.audit.errors import AuditStoreError
from services.audit.model import AUDIT_FILTERS, OutboxEntry

_SORTED = orjson.OPT_SORT_KEYS
_BUILD_HINT = "Fix: build audit records with services.core.records."


AUDIT_COLUMNS = (
    "record_id",
    "action",
    "result",
    "object",
    "signal_id",
    "origin",
    "recipient",
    "covenant_id",
    "rule_id",
    "body",
)
"""The ``audit_records`` columns an :class:`AuditRow` carries in :attr:`AuditRow.columns`, in
that order (``timestamp`` is apart because each database wants it in its own form)."""


class AuditRow(NamedTuple):
    """One ``audit_records`` row before it is numbered and chained, and its subjects."""

    columns: tuple[Any, ...]
    """The values of :data:`AUDIT_COLUMNS`: ``record_id`` first, the canonical JSON last."""
    timestamp: datetime
    """The decision time, in UTC."""
    subjects: tuple[str, ...]
    """The hub-internal pseudonyms of the subjects the record is about."""

    @property
    def record_id(self) -> str:
        return cast(str, self.columns[0])

    @property
    def body(self) -> str:
        """The record as canonical JSON (sorted keys): what is stored and hashed."""
        return cast(str, self.columns[-1])

    def column(self, name: str) -> Any:
        """The value of the column ``name`` (one of :data:`AUDIT_COLUMNS`, or ``timestamp``)."""
        if name == "timestamp":
            return self.timestamp
        return self.columns[AUDIT_COLUMNS.index(name)]


def utc(moment: datetime, what: str) -> datetime:
    """``moment`` in UTC; naive datetimes are refused because their zone is a guess."""
    if moment.tzinfo is UTC:
        return moment
    if moment.utcoffset() is None:
        raise AuditStoreError(
            f"{what} has no time zone. Fix: pass an aware datetime, e.g. datetime.now(UTC)."
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, or 9999 west of it
        raise AuditStoreError(
            f"{what} has no time in UTC (beyond the calendar). Fix: pass a time in UTC."
        ) from None


def audit_row(record: Mapping[str, Any]) -> AuditRow:
    """The row of one audit record; :class:`AuditStoreError` if it cannot be stored.

    This runs for every record the router writes, so it avoids what is slow in CPython on a
    hot path (abstract-class ``isinstance`` checks, building messages that are not raised).
    """
    if type(record) is not dict:
        record = dict(record)
    get = record.get
    record_id = get("record_id")
    if type(record_id) is not str or not record_id:
        raise AuditStoreError(f"an audit record has no record_id. {_BUILD_HINT}")
    action = get("action")
    result = get("result")
    if type(action) is not str or type(result) is not str:
        raise AuditStoreError(f"audit record {record_id} lacks action or result. {_BUILD_HINT}")
    try:
        body = orjson.dumps(record, option=_SORTED)
    except TypeError as error:  # orjson names the type, never the value
        raise AuditStoreError(
            f"audit record {record_id} is not JSON-serialisable ({error}). {_BUILD_HINT}"
        ) from None
    covenant = get("covenant")
    if covenant is None:
        covenant_id = rule_id = None
    elif type(covenant) is dict or isinstance(covenant, Mapping):
        covenant_id, rule_id = covenant.get("id"), covenant.get("rule")
    else:
        raise AuditStoreError(f"audit record {record_id}: covenant must be a mapping or null.")
    columns = (
        record_id,
        action,
        result,
        get("object"),
        get("signal_id"),
        get("origin"),
        get("recipient"),
        covenant_id,
        rule_id,
        body.decode(),
    )
    for name, value in zip(AUDIT_COLUMNS[1:-1], columns[1:-1], strict=True):
        if value is not None and (type(value) is not str or "\x00" in value):
            _refuse_column(record_id, name)
    if "\x00" in record_id:
        _refuse_column(record_id, "record_id")
    return AuditRow(
        columns, _timestamp(record_id, get("timestamp")), _subjects(record_id, get("subjects"))
    )


def _refuse_column(record_id: str, name: str) -> NoReturn:
    """A searchable column must be text a database can hold (PostgreSQL text holds no NUL);
    the error names the column, never its value (nor, for a bad record_id, the id)."""
    shown = "with a bad record_id" if name == "record_id" else record_id
    raise AuditStoreError(
        f"audit record {shown}: {name} must be text without NUL characters, or null. {_BUILD_HINT}"
    )


def outbox_row(entry: OutboxEntry) -> dict[str, Any]:
    """The ``feed_outbox`` row of one entry."""
    if not entry.exchange_id or not entry.recipient:
        raise AuditStoreError(
            "an outbox entry has an empty exchange_id or recipient. Fix: take both from the "
            "delivered decision."
        )
    if not isinstance(entry.key, bytes | bytearray) or not isinstance(entry.value, bytes):
        raise AuditStoreError(
            f"outbox entry {entry.exchange_id}: key and value must be bytes. Fix: encode the "
            "feed key and serialise the feed message before recording them."
        )
    return {
        "exchange_id": entry.exchange_id,
        "recipient": entry.recipient,
        "key": bytes(entry.key),
        "value": entry.value,
        "created_at": utc(entry.created_at, f"outbox entry {entry.exchange_id} created_at"),
        "kafka_partition": entry.partition,
        "kafka_offset": entry.offset,
        "consumed": entry.consumed,
    }


def outbox_entry(row: Mapping[Any, Any]) -> OutboxEntry:
    """The entry of a ``feed_outbox`` row (as :func:`outbox_row` made it or a database read it;
    SQLite hands back naive UTC datetimes, so the zone is put back)."""
    created_at: datetime = row["created_at"]
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    elif created_at.tzinfo is not UTC:
        created_at = created_at.astimezone(UTC)
    return OutboxEntry(
        exchange_id=row["exchange_id"],
        recipient=row["recipient"],
        key=bytes(row["key"]),
        value=bytes(row["value"]),
        created_at=created_at,
        partition=row["kafka_partition"],
        offset=row["kafka_offset"],
        consumed=bool(row["consumed"]),
    )


def check_filters(filters: Mapping[str, str]) -> None:
    """Refuse :meth:`~services.audit.model.AuditStore.count` filters that are not columns."""
    unknown = sorted(set(filters) - set(AUDIT_FILTERS))
    if unknown:
        raise AuditStoreError(
            f"cannot count audit records by {', '.join(unknown)}. "
            f"Fix: filter by one of {', '.join(AUDIT_FILTERS)}."
        )


def check_limit(limit: int) -> None:
    """Refuse page sizes below one (SQLite would read a negative limit as 'no limit')."""
    if limit < 1:
        raise AuditStoreError(f"limit must be at least 1, got {limit}.")


def _timestamp(record_id: str, value: object) -> datetime:
    if type(value) is str:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is UTC:  # the core writes UTC ("...Z")
                return moment
            return utc(moment, f"audit record {record_id} timestamp")
    raise AuditStoreError(f"audit record {record_id} has no ISO 8601 timestamp. {_BUILD_HINT}")


def _subjects(record_id: str, subjects: object) -> tuple[str, ...]:
    if not subjects:
        return ()
    if isinstance(subjects, dict | Mapping):
        pseudonyms = tuple(dict.fromkeys(subjects.values()))
        for pseudonym in pseudonyms:
            if type(pseudonym) is not str or not pseudonym or "\x00" in pseudonym:
                break
        else:
            return pseudonyms
    raise AuditStoreError(
        f"audit record {record_id}: subjects must map field paths to pseudonyms. {_BUILD_HINT}"
    )
