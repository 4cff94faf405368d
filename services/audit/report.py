"""The covenant report: how a covenant was used in a period, counted in the database.

Counts per rule, per recipient, per month and per result, plus the most frequent reasons for
withholding, all as ``GROUP BY`` queries with bound parameters; and every disclosure of an
identifier in the clear (share value ``plain``), per rule and field, read from the hashed
record bodies themselves. Months are counted with a
``CASE`` over month boundaries computed here, rather than a date function, because date
functions differ between SQLite and PostgreSQL while comparisons do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Engine, case, func, select

from services.audit.queries import Period, Scope, reason_expression, scoped, utc
from services.database.tables.audit import audit_records

MAX_MONTHS = 120
"""Longest period a report covers, in calendar months."""

TOP_REASONS = 10

PLAIN = "plain"
"""The share value of an identifier disclosed in the clear (see docs/covenants.md#share)."""

_R = audit_records.c


@dataclass(frozen=True, slots=True)
class Report:
    """Counts for one covenant in one period (only what the caller's scope may see)."""

    covenant_id: str
    period: Period
    total: int
    by_rule: list[tuple[str, int]]
    by_recipient: list[tuple[str, int]]
    by_month: list[tuple[str, int]]
    """``("2026-09", count)`` for every month of the period, empty months included."""
    by_result: list[tuple[str, int]]
    withheld_reasons: list[tuple[str, int]]
    plain_disclosures: list[tuple[str, int]] = field(default_factory=list)
    """``("rule-id: field", count)``: deliveries that disclosed that identifier in the clear."""

    def to_json(self) -> dict[str, Any]:
        def pairs(items: list[tuple[str, int]]) -> dict[str, int]:
            return dict(items)

        return {
            "covenant": self.covenant_id,
            "since": self.period.since.isoformat() if self.period.since else None,
            "until": self.period.until.isoformat() if self.period.until else None,
            "total": self.total,
            "by_rule": pairs(self.by_rule),
            "by_recipient": pairs(self.by_recipient),
            "by_month": pairs(self.by_month),
            "by_result": pairs(self.by_result),
            "withheld_reasons": [{"reason": r, "count": n} for r, n in self.withheld_reasons],
            "plain_disclosures": pairs(self.plain_disclosures),
        }


def month_starts(since: datetime, until: datetime) -> list[datetime]:
    """The first instant (UTC) of every month from ``since``'s month up to ``until``."""
    moment = datetime(since.year, since.month, 1, tzinfo=UTC)
    starts: list[datetime] = []
    while moment < until and len(starts) < MAX_MONTHS:
        starts.append(moment)
        year, month = divmod(moment.year * 12 + moment.month, 12)  # month is 1-based
        moment = datetime(year, month + 1, 1, tzinfo=UTC)
    return starts


def covenant_report(engine: Engine, covenant_id: str, period: Period, scope: Scope) -> Report:
    """Count how covenant ``covenant_id`` was used in ``period``, within ``scope``."""
    where: list[ColumnElement[bool]] = [_R.covenant_id == covenant_id]
    if period.since is not None:
        where.append(_R.timestamp >= utc(period.since))
    if period.until is not None:
        where.append(_R.timestamp < utc(period.until))

    def grouped(column: ColumnElement[Any], *extra: ColumnElement[bool]) -> list[tuple[str, int]]:
        statement = scoped(
            select(column, func.count()).where(*where, *extra).group_by(column), scope
        )
        rows = connection.execute(statement).all()
        return sorted(((str(key), int(n)) for key, n in rows), key=lambda p: (-p[1], p[0]))

    with engine.connect() as connection:
        by_result = grouped(_R.result)
        total = sum(n for _, n in by_result)
        by_rule = grouped(_R.rule_id)
        by_recipient = grouped(_R.recipient)
        reasons = grouped(reason_expression(engine), _R.result == "withheld")[:TOP_REASONS]
        bounds = _bounds(connection, where, scope, period)
        by_month = _months(connection, where, scope, bounds) if total else []
        plain = _plain(connection, where, scope)
    return Report(
        covenant_id, period, total, by_rule, by_recipient, by_month, by_result, reasons, plain
    )


def _plain(
    connection: Any, where: list[ColumnElement[bool]], scope: Scope
) -> list[tuple[str, int]]:
    """Count the fields disclosed as ``plain``, per rule, from the records' own bodies.

    ``LIKE`` narrows the scan to bodies holding the JSON string ``"plain"`` (the same on SQLite
    and PostgreSQL); each candidate is then parsed, so only a ``fields`` entry counts.
    """
    statement = scoped(
        select(_R.body).where(*where, _R.result == "delivered", _R.body.like(f'%"{PLAIN}"%')),
        scope,
    )
    counts: dict[str, int] = {}
    for (body,) in connection.execute(statement):
        record = orjson.loads(body)
        fields = record.get("fields") or {}
        rule = (record.get("covenant") or {}).get("rule") or "-"
        for name, how in fields.items():
            if how == PLAIN:
                key = f"{rule}: {name}"
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda p: (-p[1], p[0]))


def _bounds(
    connection: Any, where: list[ColumnElement[bool]], scope: Scope, period: Period
) -> tuple[datetime, datetime] | None:
    """The period to bucket: as asked, with open ends closed by the data."""
    statement = scoped(select(func.min(_R.timestamp), func.max(_R.timestamp)).where(*where), scope)
    low, high = connection.execute(statement).one()
    if low is None or high is None:
        return None
    since = utc(period.since) if period.since else utc(low)
    until = utc(period.until) if period.until else utc(high) + timedelta(seconds=1)
    return since, until


def _months(
    connection: Any,
    where: list[ColumnElement[bool]],
    scope: Scope,
    bounds: tuple[datetime, datetime] | None,
) -> list[tuple[str, int]]:
    if bounds is None:
        return []
    starts = month_starts(*bounds)
    if len(starts) == 1:
        statement = scoped(select(func.count()).where(*where), scope)
        return [(starts[0].strftime("%Y-%m"), int(connection.execute(statement).scalar_one()))]
    bucket = case(
        *[(_R.timestamp < start, index - 1) for index, start in enumerate(starts[1:], 1)],
        else_=len(starts) - 1,
    )
    statement = scoped(select(bucket, func.count()).where(*where).group_by(bucket), scope)
    counts = {int(index): int(n) for index, n in connection.execute(statement).all()}
    return [(start.strftime("%Y-%m"), counts.get(index, 0)) for index, start in enumerate(starts)]
