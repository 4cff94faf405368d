"""Whether a pseudonym qualifies for re-identification: the audit log and the covenants.

A pseudonym qualifies only if the hub delivered it to that recipient under a rule with
``reidentify: on-request`` (the delivered audit record says so: its body carries
``pseudonyms`` and ``reidentify``), and the covenant in force today still lets that recipient
ask. Both are checked, because a rule can be tightened after the pseudonym went out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select

from services.core.covenant.model import Covenant
from services.core.policy import LOCAL_TIME
from services.database.tables.audit import audit_records
from services.reid.model import ReidError

_R = audit_records.c


@dataclass(frozen=True, slots=True)
class Issue:
    """The delivered audit record that gave a recipient a pseudonym."""

    record_id: str
    field: str
    signal_id: str | None
    covenant: dict[str, Any]


def find_issue(engine: Engine, recipient: str, covenant_id: str, pseudonym: str) -> Issue:
    """The delivery of ``pseudonym`` to ``recipient`` under a re-identifiable rule of
    ``covenant_id``; :class:`ReidError` when there is none."""
    statement = (
        select(_R.record_id, _R.signal_id, _R.body)
        .where(
            _R.recipient == recipient,
            _R.covenant_id == covenant_id,
            _R.result == "delivered",
            _R.body.contains(pseudonym, autoescape=True),
        )
        .order_by(_R.seq)
    )
    seen = False
    with engine.connect() as connection:
        rows = connection.execute(statement).all()
    for record_id, signal_id, body in rows:
        loaded: dict[str, Any] = orjson.loads(body)
        fields = [f for f, p in (loaded.get("pseudonyms") or {}).items() if p == pseudonym]
        if not fields:
            continue
        seen = True
        if loaded.get("reidentify") is True:
            return Issue(record_id, fields[0], signal_id, dict(loaded.get("covenant") or {}))
    if seen:
        raise ReidError(
            f"the pseudonym was delivered to {recipient} under covenant {covenant_id} only by "
            "rules without `reidentify: on-request`. Fix: re-identification is not allowed for "
            "it; ask the covenant manager whether the covenant article permits it."
        )
    raise ReidError(
        f"the audit log has no delivery of this pseudonym to {recipient} under covenant "
        f"{covenant_id}. Fix: check the pseudonym, recipient and covenant as the feed message "
        "shows them."
    )


def check_in_force(
    covenants: Sequence[Covenant], covenant_id: str, recipient: str, now: datetime
) -> None:
    """:class:`ReidError` unless a version of ``covenant_id`` in force at ``now`` (a Dutch
    calendar day) has a rule with ``reidentify: on-request`` for ``recipient``."""
    day = now.astimezone(LOCAL_TIME).date()
    in_force = [c for c in covenants if c.covenant == covenant_id and c.in_force(day)]
    if not in_force:
        raise ReidError(
            f"covenant {covenant_id} is not in force on {day}. Fix: re-identification needs "
            "the covenant in force; check its validity and revocation."
        )
    for covenant in in_force:
        for rule in covenant.rules:
            if rule.reidentify == "on-request" and recipient in rule.to:
                return
    raise ReidError(
        f"covenant {covenant_id} as in force on {day} has no rule with `reidentify: "
        f"on-request` for {recipient}. Fix: re-identification is not allowed for this recipient."
    )
