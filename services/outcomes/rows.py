"""Conversions between the outcome entries and table rows (shared by the SQL store and tests)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.core.decision import RuleRef
from services.core.outcomes.entries import ApprovalEntry, OutcomeEntry, SignalEntry, arrival

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def signal_row(e: SignalEntry) -> tuple[Any, ...]:
    return (
        e.source,
        e.signal_id,
        e.signal_type,
        to_us(e.time),
        e.partner_kind,
        e.municipality,
        e.strength,
        e.stackable,
        e.thread,
        " ".join(e.rules),
        to_us(e.keep_until),
        to_us(arrival(e)),
    )


SIGNAL_COLUMNS = (
    "source",
    "signal_id",
    "signal_type",
    "time_us",
    "partner_kind",
    "municipality",
    "strength",
    "stackable",
    "thread",
    "rules",
    "keep_until_us",
    "received_us",
)


def signal_of(row: Mapping[Any, Any], locations: tuple[str, ...] = ()) -> SignalEntry:
    return SignalEntry(
        source=row["source"],
        signal_id=row["signal_id"],
        signal_type=row["signal_type"],
        time=from_us(row["time_us"]),
        partner_kind=row["partner_kind"],
        municipality=row["municipality"],
        strength=row["strength"],
        stackable=bool(row["stackable"]),
        thread=row["thread"],
        rules=tuple(row["rules"].split()),
        keep_until=from_us(row["keep_until_us"]),
        received=from_us(row["received_us"]),
        locations=locations,
    )


EVENT_COLUMNS = (
    "source",
    "signal_id",
    "signal_type",
    "outcome_class",
    "time_us",
    "municipality",
    "data",
    "leaves",
    "subjects",
    "rules",
    "basis",
    "keep_until_us",
    "received_us",
)


def event_row(o: OutcomeEntry) -> tuple[Any, ...]:
    return (
        o.source,
        o.signal_id,
        o.signal_type,
        o.outcome_class,
        to_us(o.time),
        o.municipality,
        orjson.dumps(dict(o.data), option=orjson.OPT_SORT_KEYS).decode(),
        orjson.dumps(list(o.leaves)).decode(),
        orjson.dumps(dict(o.subjects), option=orjson.OPT_SORT_KEYS).decode(),
        " ".join(o.rules),
        orjson.dumps(o.basis.as_dict()).decode() if o.basis is not None else None,
        to_us(o.keep_until),
        to_us(arrival(o)),
    )


def event_of(row: Mapping[Any, Any], locations: tuple[str, ...] = ()) -> OutcomeEntry:
    basis = orjson.loads(row["basis"]) if row["basis"] else None
    return OutcomeEntry(
        source=row["source"],
        signal_id=row["signal_id"],
        signal_type=row["signal_type"],
        outcome_class=row["outcome_class"],
        time=from_us(row["time_us"]),
        municipality=row["municipality"],
        data=orjson.loads(row["data"]),
        leaves=tuple(orjson.loads(row["leaves"])),
        subjects=orjson.loads(row["subjects"]),
        rules=tuple(row["rules"].split()),
        basis=(
            RuleRef(
                basis["id"], basis["version"], basis["rule"], basis["article"], basis["purpose"]
            )
            if basis
            else None
        ),
        keep_until=from_us(row["keep_until_us"]),
        received=from_us(row["received_us"]),
        locations=locations,
    )


APPROVAL_COLUMNS = (
    "outcome_source",
    "outcome_signal_id",
    "approver",
    "decision",
    "signal_id",
    "time_us",
    "received_us",
)


def approval_row(a: ApprovalEntry) -> tuple[Any, ...]:
    return (
        a.outcome_source,
        a.outcome_signal_id,
        a.approver,
        a.decision,
        a.signal_id,
        to_us(a.time),
        to_us(arrival(a)),
    )


def approval_of(row: Mapping[Any, Any]) -> ApprovalEntry:
    return ApprovalEntry(
        approver=row["approver"],
        outcome_source=row["outcome_source"],
        outcome_signal_id=row["outcome_signal_id"],
        decision="approved" if row["decision"] == "approved" else "refused",
        signal_id=row["signal_id"],
        time=from_us(row["time_us"]),
        received=from_us(row["received_us"]),
    )
