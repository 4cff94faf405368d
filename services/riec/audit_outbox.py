"""The workplace's audit records, staged with the change they tell of.

Every workplace action stages its audit records (:func:`stage`) in the same transaction as its
state change, under the record's own id; :func:`flush` then writes the pending records to the
audit store and removes each one the store has taken. The store skips a record id it holds
already, so a flush that dies between the write and the removal writes nothing twice. A
change therefore never persists without its record: if the store fails, the record waits in
``riec_audit_pending`` and the next flush — after the next action, or in the feed reader's loop
(``schakel riec run``) — writes it. A failed flush is logged with its count and the error's
type only, never a record id (it names an item or a case) or any text.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select

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


def flush(engine: Engine, audit: AuditStore, *, limit: int = 10_000) -> Flushed:
    """Write the staged records to ``audit``, oldest first, removing each the store took;
    stops at the first failure (logged without identifiers) and reports it."""
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
                return Flushed(written, left, type(error).__name__)
            with engine.begin() as connection:
                connection.execute(delete(riec_audit_pending).where(t.id == key))
            written += 1
    return Flushed(written, pending(engine))
