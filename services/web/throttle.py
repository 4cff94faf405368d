"""Throttling sign-in: back-off per account and per client, kept in the database.

Every failed sign-in counts against the account name that was tried *and* the client it came
from. After :attr:`ThrottlePolicy.account_free` failures on an account (or
:attr:`~ThrottlePolicy.client_free` from one client) each further failure blocks sign-in there
for a back-off that doubles, from :attr:`~ThrottlePolicy.base_seconds` up to
:attr:`~ThrottlePolicy.max_seconds`. While an account or client is blocked every sign-in is
refused *before* the password is checked — the right password too, from any client — so a
guesser gets no answer and no scrypt time. A successful sign-in clears its account's count
(not its client's: an attacker with an account of their own could otherwise reset it); counts
are forgotten :attr:`~ThrottlePolicy.window_seconds` after the last failure once no back-off
runs.

The counts live in the ``web_sign_in_throttle`` table (Alembic revision ``0009``), so every
worker process of the web workplace agrees and memory stays bounded whatever an attacker
sends; rows are keyed by an HMAC of the account name or client address under the server
secret (the table holds neither in clear) and pruned when forgotten. Increments are one
``INSERT ... ON CONFLICT DO UPDATE`` each, so concurrent failures in several workers are all
counted.

:class:`services.web.testing.MemorySignInThrottle` is the in-memory double.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Delete, Engine, case, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import ReturningInsert

from services.database.tables.web import web_sign_in_throttle
from services.web.sessions import Clock, utc, utc_now

ACCOUNT = "account"
CLIENT = "client"


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failures are free and how the back-off grows after them."""

    account_free: int = 5
    client_free: int = 20
    base_seconds: float = 1.0
    max_seconds: float = 900.0
    window_seconds: float = 900.0

    def __post_init__(self) -> None:
        if min(self.account_free, self.client_free) < 1 or not (
            0 < self.base_seconds <= self.max_seconds and self.window_seconds > 0
        ):
            raise ValueError("a throttle policy needs free counts >= 1 and positive times")

    def free(self, kind: str) -> int:
        return self.account_free if kind == ACCOUNT else self.client_free

    def backoff(self, kind: str, failures: int) -> float:
        """Seconds of back-off after the ``failures``-th failure in a row (0 while free)."""
        over = failures - self.free(kind)
        if over <= 0:
            return 0.0
        return min(self.max_seconds, self.base_seconds * 2.0 ** min(over - 1, 40))


def throttle_key(secret: bytes, kind: str, value: str) -> str:
    """What the table keeps of an account name or client address: an HMAC under the secret."""
    message = f"schakel-sign-in\0{kind}\0{value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class SignInThrottle(Protocol):
    """Counts failed sign-ins and says how long an account or client must wait."""

    policy: ThrottlePolicy

    def wait(self, account: str, client: str) -> float:
        """Seconds until ``account`` may be tried from ``client`` again (0: now)."""
        ...

    def failed(self, account: str, client: str) -> float:
        """Count a failed sign-in; the back-off (seconds) it started, 0 if none."""
        ...

    def succeeded(self, account: str) -> None:
        """Forget the failures of ``account`` after a successful sign-in."""
        ...


class SqlSignInThrottle:
    """:class:`SignInThrottle` on the ``web_sign_in_throttle`` table of ``engine``."""

    def __init__(
        self,
        engine: Engine,
        secret: bytes,
        policy: ThrottlePolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._postgresql = engine.dialect.name == "postgresql"

    def wait(self, account: str, client: str) -> float:
        keys = [self._key(ACCOUNT, account), self._key(CLIENT, client)]
        now = self._clock()
        t = web_sign_in_throttle.c
        with self._engine.connect() as connection:
            blocked = connection.execute(
                select(func.max(t.blocked_until)).where(t.key.in_(keys))
            ).scalar_one_or_none()
        if blocked is None:
            return 0.0
        return max(0.0, (utc(blocked) - now).total_seconds())

    def failed(self, account: str, client: str) -> float:
        now = self._clock()
        longest = 0.0
        with self._engine.begin() as connection:
            for kind, value in ((ACCOUNT, account), (CLIENT, client)):
                failures = connection.execute(self._count(kind, value, now)).scalar_one()
                backoff = self.policy.backoff(kind, int(failures))
                if backoff:
                    until = now + timedelta(seconds=backoff)
                    connection.execute(
                        web_sign_in_throttle.update()
                        .where(web_sign_in_throttle.c.key == self._key(kind, value))
                        .values(blocked_until=until)
                    )
                    longest = max(longest, backoff)
            connection.execute(self._forgotten(now))
        return longest

    def succeeded(self, account: str) -> None:
        key = self._key(ACCOUNT, account)
        with self._engine.begin() as connection:
            connection.execute(
                delete(web_sign_in_throttle).where(web_sign_in_throttle.c.key == key)
            )

    def _key(self, kind: str, value: str) -> str:
        return throttle_key(self._secret, kind, value)

    def _count(self, kind: str, value: str, now: datetime) -> ReturningInsert[tuple[int]]:
        """Add one failure (starting over if the last one is forgotten); returns the count."""
        t = web_sign_in_throttle.c
        stale = now - timedelta(seconds=self.policy.window_seconds)
        forgotten = (t.last_failure_at < stale) & or_(
            t.blocked_until.is_(None), t.blocked_until < now
        )
        values = {"key": self._key(kind, value), "failures": 1, "last_failure_at": now}
        again = {
            "failures": case((forgotten, 1), else_=t.failures + 1),
            "last_failure_at": now,
        }
        if self._postgresql:
            on_postgresql = postgresql.insert(web_sign_in_throttle).values(values)
            upsert = on_postgresql.on_conflict_do_update(index_elements=[t.key], set_=again)
            return upsert.returning(t.failures)
        on_sqlite = sqlite.insert(web_sign_in_throttle).values(values)
        return on_sqlite.on_conflict_do_update(index_elements=[t.key], set_=again).returning(
            t.failures
        )

    def _forgotten(self, now: datetime) -> Delete:
        """Rows whose failures are forgotten and whose back-off has ended: pruned."""
        t = web_sign_in_throttle.c
        stale = now - timedelta(seconds=self.policy.window_seconds)
        return delete(web_sign_in_throttle).where(
            t.last_failure_at < stale, or_(t.blocked_until.is_(None), t.blocked_until < now)
        )
