"""The audit record of every workplace action: who, what, which item or case, why.

Records go into the hub's audit store (hash-chained like every other record), under the
covenant and recipient of the item or case, so a privacy officer scoped to that covenant or
RIEC finds them in the exchange search; their subjects are the hub-internal pseudonyms of the
locations involved, so an access request (AVG art. 15) about a location finds them too. No
raw identifier and no free text of notes goes in (a note is named by its length): notes may
hold what the audit log must not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

RESULTS: Final = {
    "take": "assessing",
    "takeover": "taken-over",
    "dismiss": "dismissed",
    "reopen": "reopened",
    "to-case": "bundled",
    "open-case": "opened",
    "note": "noted",
    "decision": "decided",
    "reid": "filed",
    "handing-over": "staged",
    "handover": "offered",
    "handover-withheld": "withheld",
    "outcome": "recorded",
    "purge": "purged",
    "purge-items": "purged",
    "barrier": "raised",
}
"""The audit record's ``result`` per workplace action (``action`` is ``riec-<step>``): one
short word each, like the router's, so the exchange list stays one line per record."""


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def action_record(
    record_id: str,
    step: str,
    *,
    actor: str,
    at: datetime,
    recipient: str | None,
    covenant_id: str | None,
    object_kind: str,
    reference: dict[str, Any],
    locations: Sequence[str] = (),
    reason: str | None = None,
) -> dict[str, Any]:
    """The audit record of one workplace action ``step`` by ``actor``. A ``reason`` is free
    text an analyst typed (it may name a person or an address): the record, which is kept in
    the chain beyond the workplace's retention, names only its length; the text stays in the
    workplace and is purged with it."""
    return {
        "record_id": record_id,
        "action": f"riec-{step}",
        "result": RESULTS[step],
        "object": object_kind,
        "signal_id": None,
        "origin": None,
        "recipient": recipient,
        "actor": actor,
        "timestamp": stamp(at),
        "processing_activity": "RIEC case work (WGS)",
        "trace_id": reference.get("case") or reference.get("item"),
        "covenant": None if covenant_id is None else {"id": covenant_id},
        "fields": {},
        "withheld_fields": [],
        "pseudonyms": {},
        "subjects": {f"location.{n}": p for n, p in enumerate(sorted(set(locations)))},
        "reason": None if reason is None else f"reason given ({len(reason)} characters)",
        "retention_days": None,
        "reidentify": False,
        "riec": reference,
    }
