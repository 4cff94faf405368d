"""The coverage aggregate as an audited disclosure to a campaign team (pure).

Releasing aggregates is a disclosure like any other: it needs an ``aggregates`` entry with
``report: coverage`` in a covenant in force that names the recipient, its cells are suppressed
below that entry's ``min_cell`` (and the recipient's own ``aggregate_only`` floor), and it is
audited with that covenant, version, entry id and article. The message carries the month's released rows and
totals (suppressed counts as ``null``) and nothing else: no identifier, no signal id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import orjson

from services.core.covenant.model import Covenant
from services.core.coverage.release import DEFAULT_THRESHOLD, Release
from services.core.decision import RuleRef, exchange_id

REPORT: Final = "coverage"
AGGREGATE_TYPE: Final = "hub.coverage_aggregate.v1"
HUB_SOURCE: Final = "schakel"
ACTOR: Final = "schakel-coverage"
DISCLOSED: Final = {
    "month": "keep",
    "threshold": "keep",
    "rows.municipality": "keep",
    "rows.reports": "aggregate:suppressed-below-threshold",
    "rows.indicators": "aggregate:suppressed-below-threshold",
    "totals": "aggregate:published-cells-only",
    # the envelope describes the release, not any signal: its id follows from the released
    # numbers (nothing the recipient does not hold), its time is when it was published
    "envelope.exchange_id": "release-content",
    "envelope.type": "keep",
    "envelope.source": "keep",
    "envelope.time": "release-time",
}


@dataclass(frozen=True, slots=True)
class Grounds:
    """The covenant ``aggregates`` entry an aggregate release rests on."""

    rule: RuleRef
    retention_days: int
    min_cell: int = DEFAULT_THRESHOLD
    """Counts below this are suppressed: the entry's ``min_cell`` or the recipient's
    ``aggregate_only`` floor, whichever is larger."""


def grounds(covenants: Iterable[Covenant], recipient: str) -> Grounds | None:
    """The ``aggregates`` entry (``report: coverage``) of a covenant among ``covenants`` (those
    in force) that names ``recipient``; ``None`` means the release is not allowed."""
    items = list(covenants)
    floor = 0  # the recipient's own aggregate-only floor, as strict as any covenant says
    for item in items:
        declared = item.parties.get(recipient)
        if declared is not None and declared.aggregate_only is not None:
            floor = max(floor, declared.aggregate_only.min_cell)
    for covenant in sorted(items, key=lambda c: (c.covenant, c.version), reverse=True):
        party = covenant.parties.get(recipient)
        if party is None or "recipient" not in party.roles:
            continue
        for aggregate in covenant.aggregates:
            if aggregate.report == REPORT and recipient in aggregate.to:
                ref = RuleRef(
                    covenant.covenant,
                    covenant.version,
                    aggregate.id,
                    aggregate.article,
                    aggregate.purpose,
                )
                min_cell = max(aggregate.min_cell, floor, DEFAULT_THRESHOLD)
                return Grounds(ref, aggregate.retention_period.days, min_cell)
    return None


@dataclass(frozen=True, slots=True)
class AggregateRelease:
    """What to write: the audit record and the feed message (same exchange id)."""

    exchange_id: str
    audit: dict[str, Any]
    message: dict[str, Any]


def aggregate_release(
    published: Release, month: str, recipient: str, basis: Grounds, now: datetime
) -> AggregateRelease:
    """The disclosure of one month of ``published`` to ``recipient`` under ``basis``.

    The exchange id follows from recipient, month and content, so publishing the same numbers
    twice is one exchange (idempotent), and new numbers make a new one.
    """
    rows = [r for r in published.to_json()["rows"] if r["month"] == month]
    for row in rows:
        del row["month"]
    totals = [t for t in published.to_json()["totals"] if t["month"] == month]
    data = {
        "month": month,
        "threshold": published.threshold,
        "rows": rows,
        "totals": totals[0] if totals else {"reports": 0, "indicators": 0},
    }
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    release_id = f"coverage:{month}:{digest}"
    exchange = exchange_id(HUB_SOURCE, release_id, recipient)
    time = now.isoformat().replace("+00:00", "Z")
    message: dict[str, Any] = {
        "exchange_id": exchange,
        "type": AGGREGATE_TYPE,
        "source": HUB_SOURCE,
        "time": time,
        "covenant": basis.rule.as_dict(),
        "data": data,
        "retention_days": basis.retention_days,
        "reidentify": False,
    }
    audit: dict[str, Any] = {
        "record_id": exchange,
        "action": "disclose",
        "result": "delivered",
        "object": AGGREGATE_TYPE,
        "signal_id": release_id,
        "origin": HUB_SOURCE,
        "recipient": recipient,
        "actor": ACTOR,
        "timestamp": time,
        "processing_activity": basis.rule.purpose,
        "trace_id": release_id,
        "covenant": basis.rule.as_dict(),
        "fields": dict(DISCLOSED),
        "withheld_fields": [],
        "pseudonyms": {},
        "subjects": {},
        "reason": None,
        "retention_days": basis.retention_days,
        "reidentify": False,
        "feed_exchange_id": exchange,
    }
    return AggregateRelease(exchange, audit, message)
