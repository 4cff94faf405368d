"""Conversions between the stacking domain objects and table rows (shared by both stores)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from services.core.stacking.alerts import Alert
from services.core.stacking.evidence import Evidence

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SEP = " "


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch (UTC) of an aware datetime."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def evidence_row(location: str, e: Evidence) -> dict[str, Any]:
    return {
        "location": location,
        "source": e.source,
        "signal_id": e.signal_id,
        "partner_kind": e.partner_kind,
        "signal_type": e.signal_type,
        "barrier_steps": _SEP.join(e.barrier_steps),
        "time_us": to_us(e.time),
        "strength": e.strength,
    }


def evidence_of(row: Mapping[Any, Any]) -> Evidence:
    steps: str = row["barrier_steps"]
    return Evidence(
        source=row["source"],
        signal_id=row["signal_id"],
        partner_kind=row["partner_kind"],
        signal_type=row["signal_type"],
        barrier_steps=tuple(steps.split(_SEP)) if steps else (),
        time=from_us(row["time_us"]),
        strength=float(row["strength"]),
    )


def alert_row(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "signal_id": alert.signal_id,
        "location": alert.location,
        "municipality": alert.municipality,
        "locator": alert.locator,
        "score": alert.score,
        "signal_types": _SEP.join(alert.signal_types),
        "barrier_steps": _SEP.join(alert.barrier_steps),
        "partner_kinds": _SEP.join(alert.partner_kinds),
        "evidence_keys": "\n".join(alert.evidence_keys),
        "first_seen_us": to_us(alert.first_seen),
        "last_seen_us": to_us(alert.last_seen),
        "revision": alert.revision,
        "raised_at_us": to_us(alert.raised_at),
        "updated_at_us": to_us(alert.updated_at),
        "published": alert.published,
    }


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split(_SEP)) if text else ()


def alert_of(row: Mapping[Any, Any]) -> Alert:
    return Alert(
        alert_id=row["alert_id"],
        signal_id=row["signal_id"],
        location=row["location"],
        municipality=row["municipality"],
        locator=row["locator"],
        score=float(row["score"]),
        signal_types=_words(row["signal_types"]),
        barrier_steps=_words(row["barrier_steps"]),
        partner_kinds=_words(row["partner_kinds"]),
        evidence_keys=tuple(row["evidence_keys"].split("\n")),
        first_seen=from_us(row["first_seen_us"]),
        last_seen=from_us(row["last_seen_us"]),
        revision=int(row["revision"]),
        raised_at=from_us(row["raised_at_us"]),
        updated_at=from_us(row["updated_at_us"]),
        published=bool(row["published"]),
    )
