"""Items: what a RIEC's feed delivered, stored as delivered, and the queue over them.

:func:`item_row` turns one feed message into its row — the message itself unchanged (the
workplace never shows more than the feed delivered), plus the columns the queue filters by,
read from the message: municipality, score, the barrier-model steps its type informs (an
alert names its own), whether it is a stacked-location alert. The recipient's pseudonyms in
the message are listed for bundling; the hub-internal pseudonyms of the premises behind them
come from a :data:`Locate` function the hub passes in (the value itself is never kept).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Select, and_, select

from services.audit.queries import utc
from services.core.schema_registry import SchemaRegistry
from services.database.tables.riec import riec_items
from services.riec.model import Item, ItemState, QueueFilters, RiecError
from services.riec.scope import Reach

ALERT_TYPE = "hub.stacked_location_alert.v1"
DEFAULT_RETENTION_DAYS = 365
MAX_RETENTION_DAYS = 100 * 366  # a retention beyond a century is not a covenant's

Locate = Callable[[str, str, str], tuple[bool, str | None]]
"""``(recipient, covenant id, value)`` → (whether the value is one of the recipient's
pseudonyms, the hub-internal pseudonym of the premises behind it if it names one)."""


def item_row(
    recipient: str, message: Mapping[str, Any], registry: SchemaRegistry, locate: Locate
) -> dict[str, Any]:
    """The ``riec_items`` row of one feed message ``recipient`` received (state ``new``)."""
    try:
        exchange_id = str(message.get("exchange_id") or message["id"])
        signal_type = str(message["type"])
        covenant = message["covenant"]
        covenant_id, rule_id = str(covenant["id"]), str(covenant["rule"])
        received = _moment(str(message["time"]))
        data = message.get("data") or {}
        if not isinstance(data, dict):
            raise TypeError("data")
        retention = message.get("retention_days") or DEFAULT_RETENTION_DAYS
        if isinstance(retention, bool) or not isinstance(retention, int):
            raise TypeError("retention_days")
        if not 0 < retention <= MAX_RETENTION_DAYS:
            raise ValueError("retention_days")
        keep_until = received.astimezone(UTC) + timedelta(days=retention)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise RiecError(
            f"a feed message for {recipient} lacks {error} or has it malformed. Fix: pass "
            "messages exactly as the feed delivered them."
        ) from None
    pseudonyms: list[str] = []
    locations: list[str] = []
    for value in data.values():
        if not isinstance(value, str):
            continue
        mine, location = locate(recipient, covenant_id, value)
        if mine:
            pseudonyms.append(value)
        if location is not None:
            locations.append(location)
    steps = data.get("barrier_steps") if signal_type == ALERT_TYPE else None
    if not isinstance(steps, list):
        steps = list(registry.get(signal_type).barrier_steps) if signal_type in registry else []
    score = data.get("score")
    return {
        "id": exchange_id,
        "recipient": recipient,
        "covenant_id": covenant_id,
        "rule_id": rule_id,
        "signal_type": signal_type,
        "received_at": received.astimezone(UTC),
        "municipality": data.get("municipality")
        if isinstance(data.get("municipality"), str)
        else None,
        "score": float(score) if isinstance(score, int | float) else None,
        "steps": " ".join(str(s) for s in steps),
        "alert": int(signal_type == ALERT_TYPE),
        "message": orjson.dumps(message, option=orjson.OPT_SORT_KEYS).decode(),
        "pseudonyms": " ".join(sorted(set(pseudonyms))),
        "locations": " ".join(sorted(set(locations))),
        "keep_until": keep_until,
        "state": ItemState.NEW.value,
        "holder": None,
        "case_id": None,
        "reason": None,
    }


def _moment(text: str) -> datetime:
    """A feed message's time: RFC 3339, or a day (a rule generalised it) taken as its start."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def item_of(row: Mapping[Any, Any]) -> Item:
    return Item(
        id=row["id"],
        recipient=row["recipient"],
        covenant_id=row["covenant_id"],
        rule_id=row["rule_id"],
        signal_type=row["signal_type"],
        received_at=utc(row["received_at"]),
        municipality=row["municipality"],
        score=row["score"],
        steps=tuple(row["steps"].split()),
        alert=bool(row["alert"]),
        message=orjson.loads(row["message"]),
        pseudonyms=tuple(row["pseudonyms"].split()),
        state=ItemState(row["state"]),
        holder=row["holder"],
        case_id=row["case_id"],
        reason=row["reason"],
        keep_until=utc(row["keep_until"]),
    )


def reach_condition(statement: Select[Any], where: Reach) -> Select[Any]:
    """``statement`` restricted to what ``where`` reaches."""
    c = riec_items.c
    if where.recipients is not None:
        statement = statement.where(c.recipient.in_(sorted(where.recipients)))
    if where.covenants is not None:
        statement = statement.where(c.covenant_id.in_(sorted(where.covenants)))
    return statement


def queue_statement(
    where: Reach, filters: QueueFilters, now: datetime, limit: int, before: str | None = None
) -> Select[Any]:
    """The queue's page: newest first, ``limit`` rows, after the ``before`` cursor
    (``received_at|id`` of the last row shown)."""
    c = riec_items.c
    statement = reach_condition(select(riec_items), where)
    if filters.state is not None:
        statement = statement.where(c.state == filters.state.value)
    if filters.municipality is not None:
        statement = statement.where(c.municipality == filters.municipality)
    if filters.signal_type is not None:
        statement = statement.where(c.signal_type == filters.signal_type)
    if filters.step is not None:
        statement = statement.where(
            (c.steps == filters.step)
            | c.steps.startswith(filters.step + " ")
            | c.steps.endswith(" " + filters.step)
            | c.steps.contains(" " + filters.step + " ")
        )
    if filters.min_score is not None:
        statement = statement.where(c.score >= filters.min_score)
    if filters.max_age_days is not None:
        statement = statement.where(c.received_at >= now - timedelta(days=filters.max_age_days))
    if before is not None:
        moment, _, last = before.partition("|")
        at = datetime.fromisoformat(moment)
        statement = statement.where((c.received_at < at) | and_(c.received_at == at, c.id < last))
    return statement.order_by(c.received_at.desc(), c.id.desc()).limit(limit)


def find(connection: Connection, item_id: str, where: Reach) -> Item | None:
    """The item ``item_id`` if ``where`` reaches it."""
    statement = reach_condition(select(riec_items).where(riec_items.c.id == item_id), where)
    row = connection.execute(statement).mappings().one_or_none()
    return None if row is None else item_of(row)
