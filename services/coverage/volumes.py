"""Signal volume per signal type from the audit log, for the barrier view.

A signal counts once however many recipients it was decided for (``COUNT(DISTINCT
signal_id)`` per source), rejected input not at all; a scoped viewer counts only the records
of their scope.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, distinct, func, select

from services.audit.queries import Scope
from services.database.tables.audit import audit_records

WINDOW = timedelta(days=30)


def signal_volumes(engine: Engine, now: datetime, scope: Scope | None = None) -> dict[str, int]:
    """Signals per type decided in the 30 days before ``now``."""
    r = audit_records.c
    query = (
        select(r.object, func.count(distinct(r.origin + "\x1f" + r.signal_id)))
        .where(r.timestamp >= now - WINDOW, r.timestamp <= now)
        .where(r.result.in_(("delivered", "withheld")), r.object.is_not(None))
        .group_by(r.object)
    )
    condition = scope.condition() if scope is not None else None
    if condition is not None:
        query = query.where(condition)
    with engine.connect() as connection:
        return {str(t): int(n) for t, n in connection.execute(query)}
