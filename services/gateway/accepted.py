"""The idempotency record: which signal ids a partner's signals were accepted under.

Before a signal is produced its ``(partner, signal_id)`` is *claimed* with the SHA-256 of the
envelope's content (:attr:`Wanted.digest`: without its signature attributes); after the broker acknowledged it the claim is marked ``accepted``; if the produce
failed the claim is released, so a retry can try again. A claim that is found tells the
gateway what to answer without producing anything:

* ``accepted`` with the same digest — the same answer as the first time (accepted);
* another digest — the id is taken by a different signal (refused, 409);
* ``pending`` and younger than :data:`PENDING_TIMEOUT` — being produced by another request
  right now (409, retry); an older pending claim was left by a crashed gateway and is taken.

Rows older than the retention window are pruned (:meth:`AcceptedIds.prune`), so the table
stays bounded; a re-send after that window is produced again, and its decisions get the same
exchange ids as before (:func:`services.core.decision.exchange_id`), so the audit store skips
them and recipients drop them as duplicates.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, and_, delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from services.database.engine import WRITE_TRANSACTION
from services.database.tables.gateway import gateway_accepted

PENDING_TIMEOUT = timedelta(minutes=2)
"""A pending claim older than this was left by a gateway that died while producing."""

DEFAULT_RETENTION = timedelta(days=7)
"""How long accepted signal ids are remembered for idempotent re-sends."""


class Claim(enum.Enum):
    NEW = "new"
    """Claimed now: produce it."""
    DONE = "done"
    """Accepted before with the same content: answer accepted, do not produce."""
    CONFLICT = "conflict"
    """Accepted before with other content under the same id."""
    BUSY = "busy"
    """Another request is producing it right now."""


@dataclass(frozen=True, slots=True)
class Wanted:
    signal_id: str
    digest: str
    """SHA-256 of the signal's content: the envelope without its signature attributes, so a
    re-send signed in another batch (another root and path) is the same signal."""
    earlier: str | None = None
    """SHA-256 of the whole envelope, the digest claims were made with before signed batches:
    such a claim (kept :data:`DEFAULT_RETENTION`) still matches its re-send."""


class AcceptedIds:
    """The ``gateway_accepted`` table of ``engine``."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._clock = clock

    def claim(self, partner: str, wanted: Iterable[Wanted]) -> dict[str, Claim]:
        """Claim every wanted id of ``partner``; what to do with each (by signal id)."""
        wanted = list(wanted)
        if not wanted:
            return {}
        try:
            return self._claim(partner, wanted)
        except IntegrityError:
            # another request inserted one of the ids between our read and our insert
            # (PostgreSQL, read committed); read again: it is BUSY now
            return self._claim(partner, wanted)

    def _claim(self, partner: str, wanted: list[Wanted]) -> dict[str, Claim]:
        now = self._clock()
        table = gateway_accepted
        result: dict[str, Claim] = {}
        fresh: list[Wanted] = []
        stale: list[str] = []
        with self._write() as connection:
            rows = {
                row.signal_id: row
                for row in connection.execute(
                    select(table.c.signal_id, table.c.digest, table.c.state, table.c.claimed_at)
                    .where(
                        table.c.partner == partner,
                        table.c.signal_id.in_([w.signal_id for w in wanted]),
                    )
                    .with_for_update()
                )
            }
            for item in wanted:
                row = rows.get(item.signal_id)
                if row is None:
                    fresh.append(item)
                    result[item.signal_id] = Claim.NEW
                elif row.digest not in (item.digest, item.earlier):
                    result[item.signal_id] = Claim.CONFLICT
                elif row.state == "accepted":
                    result[item.signal_id] = Claim.DONE
                elif _aware(row.claimed_at) > now - PENDING_TIMEOUT:
                    result[item.signal_id] = Claim.BUSY
                else:  # left pending by a gateway that died while producing: take it over
                    stale.append(item.signal_id)
                    result[item.signal_id] = Claim.NEW
            if fresh:
                connection.execute(
                    table.insert(),
                    [
                        {
                            "partner": partner,
                            "signal_id": item.signal_id,
                            "digest": item.digest,
                            "state": "pending",
                            "claimed_at": now,
                        }
                        for item in fresh
                    ],
                )
            if stale:
                connection.execute(
                    update(table)
                    .where(table.c.partner == partner, table.c.signal_id.in_(stale))
                    .values(claimed_at=now)
                )
        return result

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite, so claims queue, not fail)."""
        with self._engine.connect() as connection:
            connection.execution_options(**{WRITE_TRANSACTION: True})
            with connection.begin():
                yield connection

    def accepted(self, partner: str, signal_ids: Iterable[str]) -> None:
        """Mark claims accepted: the broker acknowledged these signals."""
        ids = list(signal_ids)
        if not ids:
            return
        table = gateway_accepted
        with self._write() as connection:
            connection.execute(
                update(table)
                .where(table.c.partner == partner, table.c.signal_id.in_(ids))
                .values(state="accepted")
            )

    def release(self, partner: str, signal_ids: Iterable[str]) -> None:
        """Forget pending claims whose produce failed, so a retry produces them."""
        ids = list(signal_ids)
        if not ids:
            return
        table = gateway_accepted
        with self._engine.begin() as connection:
            connection.execute(
                delete(table).where(
                    and_(
                        tuple_(table.c.partner, table.c.signal_id).in_([(partner, i) for i in ids]),
                        table.c.state == "pending",
                    )
                )
            )

    def prune(self, retention: timedelta = DEFAULT_RETENTION) -> int:
        """Forget accepted ids claimed longer than ``retention`` ago; how many."""
        table = gateway_accepted
        with self._engine.begin() as connection:
            done = connection.execute(
                delete(table).where(table.c.claimed_at < self._clock() - retention)
            )
        return int(done.rowcount)


def _aware(moment: datetime) -> datetime:
    """SQLite hands timestamps back without their offset; they were written in UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment
