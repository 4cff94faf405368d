"""What the searchable columns and the subject index must hold: derived from the hashed record.

The hash chain (:mod:`services.audit.chain`) covers ``seq``, ``prev_seq``, ``record_id`` and
``body`` of every record. Searches, reports, pages and access requests read other columns too:
the decision time, result, origin, recipient, covenant and rule of ``audit_records``, and the
``audit_subjects`` rows an access request (AVG art. 15) goes by. The store derives all of them
from the record when it writes it (:func:`services.audit.rows.audit_row`), so an intact log
has exactly the values :func:`differences` derives again from the stored body; verification
(:mod:`services.audit.verify`) compares every record's stored columns and subject rows with
them, so changing a column or deleting an index row (to hide records from a search or an
access request) is found like a changed body.

:data:`COVERAGE` says, for every column of every audit table, what vouches for it; a test
reads the tables from the schema, so a new column fails it until it is classified here (and,
if a query may read it, checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from orjson import JSONDecodeError, loads

Cover = Literal["chain", "derived", "signed", "not-audit"]

INDEX_COLUMNS: Final = (
    "record_id",
    "timestamp",
    "action",
    "result",
    "object",
    "signal_id",
    "origin",
    "recipient",
    "covenant_id",
    "rule_id",
)
"""The ``audit_records`` columns besides the body that a query may read, in the order of
:attr:`~services.audit.chain.ChainRecord.columns` (``record_id`` is hashed as well; it is
compared to the body's)."""

COVERAGE: Final[Mapping[str, Mapping[str, Cover]]] = {
    "audit_records": {
        "seq": "chain",
        "prev_seq": "chain",
        "record_id": "chain",
        "body": "chain",
        "chain_hash": "chain",
        **{name: "derived" for name in INDEX_COLUMNS if name != "record_id"},
    },
    "audit_subjects": {"pseudonym": "derived", "seq": "derived"},
    "audit_checkpoints": dict.fromkeys(
        ("seq", "chain_hash", "created_at", "key_id", "signature"), "signed"
    ),
    "audit_purges": dict.fromkeys(
        (
            "seq",
            "chain_hash",
            "records",
            "first_timestamp",
            "last_timestamp",
            "created_at",
            "key_id",
            "signature",
        ),
        "signed",
    ),
    "feed_outbox": dict.fromkeys(
        (
            "seq",
            "exchange_id",
            "recipient",
            "key",
            "value",
            "created_at",
            "kafka_partition",
            "kafka_offset",
            "consumed",
        ),
        "not-audit",
    ),
}
"""Every column of the audit tables and what vouches for it: ``chain`` (hashed into the chain),
``derived`` (derived from the hashed body; verification compares), ``signed`` (covered by the
signature of its row), ``not-audit`` (delivery bookkeeping of the feed outbox: no audit query,
page or report reads it; what was delivered is in the audit records)."""


def moment_text(moment: datetime) -> str:
    """A decision time as SQLite stores it (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC): the form
    stored timestamps of both databases are compared in."""
    if moment.tzinfo is not UTC:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(" ", "microseconds")[:26]


def _timestamp_text(value: object) -> str | None:
    """:func:`moment_text` of a record's ISO 8601 ``timestamp``, quickly for the core's form
    (``...Z``, with or without microseconds); ``None`` if it is no time."""
    if type(value) is not str:
        return None
    if value[10:11] == "T":  # the fast path: "...Z" or "...+00:00", whole or micro seconds
        size = len(value)
        if value[-1:] == "Z":
            size -= 1
        elif value[-6:] == "+00:00":
            size -= 6
        if size == 19:
            return f"{value[:10]} {value[11:19]}.000000"
        if size == 26 and value[19] == ".":
            return f"{value[:10]} {value[11:26]}"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return None if moment.utcoffset() is None else moment_text(moment)


def differences(
    body: str, columns: tuple[Any, ...] | None, subjects: tuple[str, ...] | None
) -> list[str]:
    """The names of what the stored ``columns`` (:data:`INDEX_COLUMNS`, ``timestamp`` as
    :func:`moment_text`) and ``subjects`` (pseudonyms of the record's ``audit_subjects`` rows,
    in any order) get wrong about the record with canonical JSON ``body``, derived as the
    store derived them when it wrote the record (``subjects`` for the subject index; ``None``
    is not compared); ``["body"]`` if the body is no record the store could have written.

    Verification calls this for every record, so it is kept lean: one parse, no objects made
    beyond the tuple compared.
    """
    try:
        record = loads(body)
    except JSONDecodeError:
        return ["body"]
    if type(record) is not dict:
        return ["body"]
    get = record.get
    wrong: list[str] = []
    if columns is not None:
        covenant = get("covenant")
        if covenant is None:
            covenant_id = rule_id = None
        elif type(covenant) is dict:
            covenant_id, rule_id = covenant.get("id"), covenant.get("rule")
        else:
            return ["body"]
        wanted = (
            get("record_id"),
            _timestamp_text(get("timestamp")),
            get("action"),
            get("result"),
            get("object"),
            get("signal_id"),
            get("origin"),
            get("recipient"),
            covenant_id,
            rule_id,
        )
        if columns != wanted:
            wrong = [
                name
                for name, have, want in zip(INDEX_COLUMNS, columns, wanted, strict=True)
                if have != want
            ]
    if subjects is not None:
        listed = get("subjects") or {}
        if type(listed) is not dict:
            return ["body"]
        try:
            pseudonyms = set(listed.values())
        except TypeError:  # values the store would have refused
            return ["body"]
        if len(subjects) != len(pseudonyms) or not pseudonyms.issuperset(subjects):
            wrong.append("subjects")
    return wrong
