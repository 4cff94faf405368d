"""The workplace's audit records, staged with the change they tell of.

Every workplace action stages its audit records (:func:`stage`) in the same transaction as its
state change, under the record's own id; :func:`flush` then writes the pending records to the
audit store and removes each one the store has taken. The store skips a record id it holds
already, so a flush that dies between the write and the removal writes nothing twice. A
change therefore never persists without its record: if the store fails, the record waits in
``riec_audit_pending`` and the next flush — after the next action, or in the feed reader's loop
(``schakel riec run``) — writes it. A failed flush is logged with its count and the error's
type only, never a record id (it names an item or a case) or any text, and counted by the
``on_failure`` a flush is given (the web workplace's ``schakel_riec_audit_flush_failures_total``);
:func:`waiting` says how many records wait and since when (``schakel_riec_audit_pending`` and
``..._oldest_seconds``, the integrity page).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, inspect, select

from services.audit.model import AuditStore
from services.core.errors import SchakelError
from services.database.tables.riec import riec_audit_pending

log = logging.getLogger("schakel.riec.audit")
BATCH = 500


@dataclass(frozen=True, slots=True)
class Flushed:
    """What a flush did: records written to the store, records still pending, and the type
    of the error that stopped it (``None`` when the store took everything)."""

    written: int
    pending: int
    failure: str | None = None


def stage(connection: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Stage ``records`` in the caller's transaction (the one of the change they tell of)."""
    for record in records:
        connection.execute(
            insert(riec_audit_pending),
            {"record_id": record["record_id"], "record": orjson.dumps(record).decode()},
        )


def pending(engine: Engine) -> int:
    """How many staged records the audit store does not have yet."""
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(riec_audit_pending)).scalar_one()
        )


@dataclass(frozen=True, slots=True)
class Waiting:
    """Staged records the audit store does not have yet: how many, and the time of the
    action the oldest tells of (``None`` when none wait)."""

    count: int
    oldest: datetime | None


def waiting(engine: Engine) -> Waiting:
    """How many records wait for the audit store, and since when (none on a database without
    the workplace's tables)."""
    if not inspect(engine).has_table(riec_audit_pending.name):
        return Waiting(0, None)
    t = riec_audit_pending.c
    with engine.connect() as connection:
        count = int(
            connection.execute(select(func.count()).select_from(riec_audit_pending)).scalar_one()
        )
        text = connection.execute(select(t.record).order_by(t.id).limit(1)).scalar_one_or_none()
    if text is None:
        return Waiting(count, None)
    try:
        oldest = datetime.fromisoformat(str(orjson.loads(text)["timestamp"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        oldest = None  # not one the workplace staged: counted, its age unknown
    return Waiting(count, oldest)


def flush(
    engine: Engine,
    audit: AuditStore,
    *,
    limit: int = 10_000,
    on_failure: Callable[[str], None] | None = None,
) -> Flushed:
    """Write the staged records to ``audit``, oldest first, removing each the store took;
    stops at the first failure (logged without identifiers, passed to ``on_failure`` by the
    error's type name) and reports it."""
    written = 0
    t = riec_audit_pending.c
    while written < limit:
        with engine.connect() as connection:
            rows = connection.execute(
                select(t.id, t.record).order_by(t.id).limit(min(BATCH, limit - written))
            ).all()
        if not rows:
            break
        for key, text in rows:
            try:
                audit.record([orjson.loads(text)], [])
            except SchakelError as error:
                left = pending(engine)
                log.warning(
                    "RIEC workplace: %d audit records pending, the audit store refused them "
                    "(%s); they are written by the next flush",
                    left, type(error).__name__,
                )  # fmt: skip
                if on_failure is not None:
                    on_failure(type(error).__name__)
                return Flushed(written, left, type(error).__name__)
            with engine.begin() as connection:
                connection.execute(delete(riec_audit_pending).where(t.id == key))
            written += 1
    return Flushed(written, pending(engine))
