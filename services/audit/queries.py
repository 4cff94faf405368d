"""Read-only queries privacy officers run over the audit log: search, one record, covenant
reports, per-subject and per-recipient views.

Everything here is SQLAlchemy Core over the tables of :mod:`services.database.tables.audit` with bound
parameters only, and works the same on SQLite and PostgreSQL. Every query takes a
:class:`Scope`: a privacy officer scoped to covenants and/or partners only ever gets rows of
those, whatever filters are asked for, so scoping cannot be forgotten by a caller — and of
each record only its own side: the other partner's references are redacted when read
(:mod:`services.audit.redaction`).

Pagination is keyset pagination on ``seq``, newest first: a page's ``next_cursor`` is the
lowest ``seq`` on it, and the next page asks for rows below it. That stays fast however deep
one pages, and a page never shifts when the hub appends records meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    ColumnElement,
    Engine,
    Select,
    and_,
    cast,
    false,
    or_,
    select,
    type_coerce,
)

from services.audit.redaction import redact
from services.database.tables.audit import audit_records, audit_subjects

MAX_LIMIT = 500
"""Largest page a caller may ask for."""

MAX_SUBJECT_PSEUDONYMS = 64
"""A subject look-up gets one pseudonym per key version and kind; more is a misuse."""

_R = audit_records.c


@dataclass(frozen=True, slots=True)
class Scope:
    """What one user may see. ``None`` for a dimension means unrestricted; a set means only
    records of those covenants / involving those partners (as origin or recipient). When both
    are given, a record must match both."""

    covenants: frozenset[str] | None = None
    partners: frozenset[str] | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    @property
    def unrestricted(self) -> bool:
        return self.covenants is None and self.partners is None

    def condition(self) -> ColumnElement[bool] | None:
        """The SQL condition of this scope, or ``None`` when unrestricted."""
        parts: list[ColumnElement[bool]] = []
        if self.covenants is not None:
            parts.append(_R.covenant_id.in_(sorted(self.covenants)) if self.covenants else false())
        if self.partners is not None:
            partners = sorted(self.partners)
            parts.append(
                or_(_R.origin.in_(partners), _R.recipient.in_(partners)) if partners else false()
            )
        return and_(*parts) if parts else None


@dataclass(frozen=True, slots=True)
class Period:
    """``since`` inclusive, ``until`` exclusive; either may be open."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Filters:
    """Search filters; ``None`` means not filtered on. Values are compared for equality only."""

    period: Period = field(default_factory=Period)
    origin: str | None = None
    recipient: str | None = None
    covenant: str | None = None
    rule: str | None = None
    result: str | None = None
    signal_type: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        pairs = (
            (_R.origin, self.origin),
            (_R.recipient, self.recipient),
            (_R.covenant_id, self.covenant),
            (_R.rule_id, self.rule),
            (_R.result, self.result),
            (_R.object, self.signal_type),
        )
        found = [column == value for column, value in pairs if value]
        return found + _period(self.period)

    def as_log(self) -> dict[str, str]:
        """The filters for the access log (none of them is a raw identifier)."""
        shown = {
            "since": self.period.since.isoformat() if self.period.since else None,
            "until": self.period.until.isoformat() if self.period.until else None,
            "origin": self.origin,
            "recipient": self.recipient,
            "covenant": self.covenant,
            "rule": self.rule,
            "result": self.result,
            "signal_type": self.signal_type,
        }
        return {key: value for key, value in shown.items() if value}


@dataclass(frozen=True, slots=True)
class Entry:
    """One audit record as a search returns it: the indexed columns and the whole body."""

    seq: int
    record_id: str
    timestamp: datetime
    result: str
    signal_type: str | None
    origin: str | None
    recipient: str | None
    covenant_id: str | None
    rule_id: str | None
    body: dict[str, Any]
    redacted: tuple[str, ...] = ()
    """Fields of ``body`` left out of a scoped officer's view (:mod:`services.audit.redaction`)."""

    @property
    def article(self) -> str | None:
        covenant = self.body.get("covenant") or {}
        article = covenant.get("article")
        return article if isinstance(article, str) else None

    def to_json(self) -> dict[str, Any]:
        shown = {"seq": self.seq, **self.body}
        if self.redacted:
            shown["redacted"] = list(self.redacted)
        return shown


@dataclass(frozen=True, slots=True)
class Page:
    entries: list[Entry]
    next_cursor: int | None
    """Pass as ``cursor`` for the next (older) page; ``None`` on the last page."""


@dataclass(frozen=True, slots=True)
class Detail:
    """One record with its place in the hash chain."""

    entry: Entry
    prev_seq: int
    chain_hash: str
    """Hex of the stored chain hash."""


_ENTRY_COLUMNS = (
    _R.seq,
    _R.record_id,
    _R.timestamp,
    _R.result,
    _R.object,
    _R.origin,
    _R.recipient,
    _R.covenant_id,
    _R.rule_id,
    _R.body,
)


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime (SQLite hands back naive UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _period(period: Period) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if period.since is not None:
        found.append(_R.timestamp >= utc(period.since))
    if period.until is not None:
        found.append(_R.timestamp < utc(period.until))
    return found


def scoped(statement: Select[Any], scope: Scope) -> Select[Any]:
    """``statement`` narrowed to what ``scope`` may see."""
    condition = scope.condition()
    return statement if condition is None else statement.where(condition)


def _entry(row: Sequence[Any], scope: Scope) -> Entry:
    """One row as ``scope`` may see it: a partner-scoped view leaves out the other side's
    own references (:func:`~services.audit.redaction.redact`; the stored body is unchanged)."""
    seq, record_id, moment, result, kind, origin, recipient, covenant, rule, body = row
    loaded: dict[str, Any] = orjson.loads(body)
    shown, redacted = redact(loaded, origin, recipient, scope.partners)
    return Entry(
        seq, record_id, utc(moment), result, kind, origin, recipient, covenant, rule, shown,
        redacted,
    )  # fmt: skip


def _check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


def search(
    engine: Engine,
    filters: Filters,
    scope: Scope,
    *,
    cursor: int | None = None,
    limit: int = 50,
) -> Page:
    """Records matching ``filters`` within ``scope``, newest first, ``limit`` per page."""
    _check_limit(limit)
    statement = select(*_ENTRY_COLUMNS).where(*filters.conditions())
    if cursor is not None:
        statement = statement.where(_R.seq < cursor)
    statement = scoped(statement, scope).order_by(_R.seq.desc()).limit(limit + 1)
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    entries = [_entry(row, scope) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(entries, entries[-1].seq if more and entries else None)


def recipient_view(
    engine: Engine,
    recipient: str,
    period: Period,
    scope: Scope,
    *,
    cursor: int | None = None,
    limit: int = 50,
) -> Page:
    """Everything decided for one recipient in ``period`` (NEN 7513: the view per user)."""
    return search(
        engine, Filters(period=period, recipient=recipient), scope, cursor=cursor, limit=limit
    )


def record(engine: Engine, reference: str | int, scope: Scope) -> Detail | None:
    """One record by ``record_id`` or ``seq``, if it exists and ``scope`` may see it."""
    key = _R.seq == reference if isinstance(reference, int) else _R.record_id == reference
    statement = scoped(select(*_ENTRY_COLUMNS, _R.prev_seq, _R.chain_hash).where(key), scope)
    with engine.connect() as connection:
        row = connection.execute(statement).one_or_none()
    if row is None:
        return None
    return Detail(_entry(row[:10], scope), int(row[10]), bytes(row[11] or b"").hex())


def subject_lookup(engine: Engine, pseudonyms: Iterable[str], scope: Scope) -> list[Entry]:
    """Every record about any of ``pseudonyms`` (hub-internal, every key version of one
    identifier), oldest first: the chronological answer to an access request."""
    wanted = sorted(set(pseudonyms))
    if not wanted:
        return []
    if len(wanted) > MAX_SUBJECT_PSEUDONYMS:
        raise ValueError(f"at most {MAX_SUBJECT_PSEUDONYMS} pseudonyms per look-up")
    seqs = select(audit_subjects.c.seq).where(audit_subjects.c.pseudonym.in_(wanted))
    statement = scoped(select(*_ENTRY_COLUMNS).where(_R.seq.in_(seqs)), scope).order_by(
        _R.timestamp, _R.seq
    )
    with engine.connect() as connection:
        return [_entry(row, scope) for row in connection.execute(statement).all()]


def reason_expression(engine: Engine) -> ColumnElement[Any]:
    """The ``reason`` of a record's JSON body, as SQL (JSON functions differ per dialect:
    PostgreSQL needs the text cast to JSON, SQLite reads JSON text as it is)."""
    document: ColumnElement[Any] = (
        cast(_R.body, JSON) if engine.dialect.name == "postgresql" else type_coerce(_R.body, JSON)
    )
    reason: ColumnElement[Any] = document["reason"].as_string()
    return reason


def covenants(engine: Engine, scope: Scope) -> list[str]:
    """The covenant ids that occur in the records ``scope`` may see, sorted."""
    statement = scoped(
        select(_R.covenant_id).where(_R.covenant_id.is_not(None)).distinct(), scope
    ).order_by(_R.covenant_id)
    with engine.connect() as connection:
        return [str(value) for value in connection.execute(statement).scalars()]
