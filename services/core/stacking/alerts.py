"""Alert decisions: raise once per stack, update on new evidence, never twice for the same.

Ids are deterministic (UUIDv5 over pseudonyms and signal ids), so replaying the same signals
gives the same alert id and the same alert signal id, and the router's exchange ids and audit
writes stay idempotent. An alert keeps its id while its evidence overlaps the previous
revision's; a stack of entirely new evidence at the same location is a new alert.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from services.core.stacking.rule import Stack

__all__ = ["ALERT_NAMESPACE", "Alert", "alert_envelope", "next_alert"]

ALERT_NAMESPACE: Final = uuid.UUID("0b6a43c2-5d1e-5f3a-8c47-737461636b65")
"""Namespace of alert ids and alert signal ids (UUIDv5); never change it."""


def _uuid5(name: str) -> str:
    return str(uuid.uuid5(ALERT_NAMESPACE, name))


@dataclass(frozen=True, slots=True)
class Alert:
    """The current state of one stacked-location alert (pseudonyms only)."""

    alert_id: str
    signal_id: str
    """Id of the alert signal for this revision: stable for the same evidence."""
    location: str
    municipality: str
    locator: str | None
    score: float
    signal_types: tuple[str, ...]
    barrier_steps: tuple[str, ...]
    partner_kinds: tuple[str, ...]
    evidence_keys: tuple[str, ...]
    first_seen: datetime
    last_seen: datetime
    revision: int
    raised_at: datetime
    updated_at: datetime
    published: bool = False

    @property
    def evidence_count(self) -> int:
        return len(self.evidence_keys)

    def as_published(self) -> Alert:
        return replace(self, published=True)


def next_alert(
    current: Alert | None,
    stack: Stack,
    *,
    location: str,
    municipality: str,
    locator: str | None,
    now: datetime,
) -> Alert | None:
    """The alert to publish for ``stack``, or None (rule not met, or nothing new)."""
    if not stack.met:
        return None
    keys = tuple(sorted(e.key for e in stack.evidence))
    if current is not None and keys == current.evidence_keys:
        return None  # the same evidence never raises the same alert twice
    if current is not None and not set(keys).isdisjoint(current.evidence_keys):
        alert_id, revision, raised_at = current.alert_id, current.revision + 1, current.raised_at
    else:
        alert_id, revision, raised_at = _uuid5(f"alert\x1f{location}\x1f{keys[0]}"), 1, now
    return Alert(
        alert_id=alert_id,
        signal_id=_uuid5(f"{alert_id}\x1f" + "\x1e".join(keys)),
        location=location,
        municipality=municipality,
        locator=locator,
        score=stack.score,
        signal_types=stack.signal_types,
        barrier_steps=stack.barrier_steps,
        partner_kinds=stack.partner_kinds,
        evidence_keys=keys,
        first_seen=stack.first_seen,
        last_seen=stack.last_seen,
        revision=revision,
        raised_at=raised_at,
        updated_at=now,
    )


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def alert_envelope(
    alert: Alert, *, source: str, signal_type: str, kind: str, value: str
) -> dict[str, Any]:
    """The alert as a signal envelope from ``source``, naming the location by ``kind``.

    ``value`` is the canonical address or BAG id, recovered from the locator in memory just
    before publishing; it goes onto the hub's signals topic only, where the router
    pseudonymises it per recipient.
    """
    if kind not in ("address", "bag"):
        raise ValueError(f"an alert names its location by address or bag, not by {kind}")
    data: dict[str, Any] = {"alert_id": alert.alert_id, kind: value}
    data |= {
        "municipality": alert.municipality,
        "score": alert.score,
        "signal_types": list(alert.signal_types),
        "barrier_steps": list(alert.barrier_steps),
        "partner_kinds": list(alert.partner_kinds),
        "evidence_count": alert.evidence_count,
        "first_seen": _rfc3339(alert.first_seen),
        "last_seen": _rfc3339(alert.last_seen),
    }
    return {
        "specversion": "1.0",
        "id": alert.signal_id,
        "source": source,
        "type": signal_type,
        "time": _rfc3339(alert.last_seen),
        "datacontenttype": "application/json",
        "data": data,
    }
