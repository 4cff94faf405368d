"""In-memory doubles of the web workplace's I/O adapters, for tests."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from services.web.sessions import (
    Clock,
    Session,
    SessionPolicy,
    session_csrf,
    token_hash,
    utc_now,
)
from services.web.throttle import ACCOUNT, CLIENT, ThrottlePolicy, throttle_key


class MemorySessionStore:
    """Sessions in a dict keyed by token hash, with the rules of
    :class:`~services.web.sessions.SqlSessionStore`."""

    def __init__(self, secret: bytes, policy: SessionPolicy, clock: Clock = utc_now) -> None:
        self._secret = secret
        self.policy = policy
        self._clock = clock
        self.rows: dict[str, tuple[str, datetime, datetime]] = {}
        """Token hash -> (user, created, last seen): what the table would hold."""

    def start(self, user: str) -> tuple[Session, str]:
        token, now = secrets.token_urlsafe(32), self._clock()
        self.rows = {
            key: row for key, row in self.rows.items() if self.policy.alive(row[1], row[2], now)
        }
        self.rows[token_hash(token)] = (user, now, now)
        return Session(user, session_csrf(self._secret, token)), token

    def find(self, token: str | None) -> Session | None:
        if not token or len(token) > 200:
            return None
        key, now = token_hash(token), self._clock()
        row = self.rows.get(key)
        if row is None:
            return None
        user, created, last_seen = row
        if not self.policy.alive(created, last_seen, now):
            del self.rows[key]
            return None
        if self.policy.stale(last_seen, now):
            self.rows[key] = (user, created, now)
        return Session(user, session_csrf(self._secret, token))

    def end(self, token: str | None) -> None:
        if token:
            self.rows.pop(token_hash(token), None)

    def end_all(self, user: str) -> int:
        ended = [key for key, row in self.rows.items() if row[0] == user]
        for key in ended:
            del self.rows[key]
        return len(ended)


class MemorySignInThrottle:
    """Failed sign-ins in a dict, with the rules of
    :class:`~services.web.throttle.SqlSignInThrottle`."""

    def __init__(
        self, secret: bytes, policy: ThrottlePolicy | None = None, clock: Clock = utc_now
    ) -> None:
        self._secret = secret
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self.rows: dict[str, tuple[int, datetime, datetime | None]] = {}
        """Key -> (failures, last failure, blocked until): what the table would hold."""

    def wait(self, account: str, client: str) -> float:
        now = self._clock()
        waits = [
            (blocked - now).total_seconds()
            for kind, value in ((ACCOUNT, account), (CLIENT, client))
            if (row := self.rows.get(throttle_key(self._secret, kind, value)))
            and (blocked := row[2]) is not None
        ]
        return max([0.0, *waits])

    def failed(self, account: str, client: str) -> float:
        now = self._clock()
        window = timedelta(seconds=self.policy.window_seconds)
        longest = 0.0
        for kind, value in ((ACCOUNT, account), (CLIENT, client)):
            key = throttle_key(self._secret, kind, value)
            failures, last, blocked = self.rows.get(key, (0, now, None))
            if last < now - window and (blocked is None or blocked < now):
                failures = 0
            failures += 1
            backoff = self.policy.backoff(kind, failures)
            if backoff:
                blocked = now + timedelta(seconds=backoff)
                longest = max(longest, backoff)
            self.rows[key] = (failures, now, blocked)
        self.rows = {
            key: row
            for key, row in self.rows.items()
            if not (row[1] < now - window and (row[2] is None or row[2] < now))
        }
        return longest

    def succeeded(self, account: str) -> None:
        self.rows.pop(throttle_key(self._secret, ACCOUNT, account), None)
