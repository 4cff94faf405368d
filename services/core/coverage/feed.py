"""The coverage aggregate as an audited disclosure to a campaign team (pure).

Releasing aggregates is a disclosure like any other: it needs a covenant rule in force that
names the recipient, for the campaign purpose (``meldingsbereidheid``), and it is audited with
that covenant, version, rule and article. The message carries the month's released rows and
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
from services.core.coverage.release import Release
from services.core.decision import RuleRef, exchange_id

CAMPAIGN_PURPOSE: Final = "meldingsbereidheid"
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
}


@dataclass(frozen=True, slots=True)
class Grounds:
    """The covenant rule an aggregate release rests on."""

    rule: RuleRef
    retention_days: int


def grounds(covenants: Iterable[Covenant], recipient: str) -> Grounds | None:
    """The rule of a covenant (among those in force) that lets ``recipient``, a campaign
    team, receive facts for the campaign purpose; ``None`` means the release is not allowed."""
    for covenant in sorted(covenants, key=lambda c: (c.covenant, c.version), reverse=True):
        party = covenant.parties.get(recipient)
        if party is None or party.kind != "campaign" or "recipient" not in party.roles:
            continue
        for rule in covenant.rules:
            if rule.purpose == CAMPAIGN_PURPOSE and recipient in rule.to:
                ref = RuleRef(
                    covenant.covenant, covenant.version, rule.id, rule.article, rule.purpose
                )
                return Grounds(ref, rule.retention_period.days)
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
    }
    return AggregateRelease(exchange, audit, message)
