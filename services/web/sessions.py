"""Server-side sessions: a random token in the cookie, only its SHA-256 in the database.

A session lives in the ``web_sessions`` table, so it ends for real: signing out deletes the
row and a copied cookie is then worthless; a session unused for ``idle`` or older than
``absolute`` is refused (and its row removed). The session's CSRF token is an HMAC of the
session token under the server secret — nothing besides the token hash is stored, and a
leaked table gives neither a usable cookie nor a CSRF token.

:class:`SqlSessionStore` is the real store; :class:`services.web.testing.MemorySessionStore`
its double. Both keep the rules of :class:`SessionPolicy`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from base64 import urlsafe_b64encode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import ColumnElement, Engine, delete, or_, select, update

from services.database.tables.web import web_sessions

SESSION_COOKIE = "schakel_session"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: its user and the CSRF token its forms must carry."""

    user: str
    csrf: str


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """How long sessions live: ``idle`` seconds unused, ``absolute`` seconds after sign-in."""

    idle: int
    absolute: int

    def __post_init__(self) -> None:
        if not 0 < self.idle <= self.absolute:
            raise ValueError("session lifetimes must satisfy 0 < idle <= absolute")

    def alive(self, created: datetime, last_seen: datetime, now: datetime) -> bool:
        return now - created < timedelta(seconds=self.absolute) and now - last_seen < timedelta(
            seconds=self.idle
        )

    def stale(self, last_seen: datetime, now: datetime) -> bool:
        """Whether ``last_seen`` is old enough to be written again (saves a write per request
        while keeping the idle limit accurate to a tenth of it, at most a minute)."""
        return now - last_seen >= timedelta(seconds=min(60, self.idle / 10))


def token_hash(token: str) -> str:
    """What the database keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def session_csrf(secret: bytes, token: str) -> str:
    """The CSRF token of the session with ``token``."""
    digest = hmac.new(secret, b"schakel-csrf\0" + token.encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(digest).decode().rstrip("=")


class SessionStore(Protocol):
    """Starts, finds and ends sessions; ``find`` refuses expired ones."""

    policy: SessionPolicy

    def start(self, user: str) -> tuple[Session, str]:
        """A new session for ``user`` and the token for its cookie."""
        ...

    def find(self, token: str | None) -> Session | None:
        """The live session of ``token`` (marking it used), or ``None``."""
        ...

    def end(self, token: str | None) -> None:
        """End the session of ``token`` (nothing if there is none)."""
        ...

    def end_all(self, user: str) -> int:
        """End every session of ``user``; how many there were."""
        ...


def utc(moment: datetime) -> datetime:
    """A stored moment in UTC: SQLite hands back naive datetimes for what was stored as UTC,
    PostgreSQL aware ones in the session's time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class SqlSessionStore:
    """Sessions in the ``web_sessions`` table of ``engine``."""

    def __init__(
        self, engine: Engine, secret: bytes, policy: SessionPolicy, clock: Clock = utc_now
    ) -> None:
        self._engine = engine
        self._secret = secret
        self.policy = policy
        self._clock = clock

    def start(self, user: str) -> tuple[Session, str]:
        token = secrets.token_urlsafe(32)
        now = self._clock()
        row = {
            "token_hash": token_hash(token),
            "user_name": user,
            "created_at": now,
            "last_seen_at": now,
        }
        with self._engine.begin() as connection:
            connection.execute(web_sessions.insert(), row)
            connection.execute(delete(web_sessions).where(self._expired(now)))
        return Session(user, session_csrf(self._secret, token)), token

    def find(self, token: str | None) -> Session | None:
        if not token or len(token) > 200:
            return None
        key, now = token_hash(token), self._clock()
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    web_sessions.c.user_name, web_sessions.c.created_at, web_sessions.c.last_seen_at
                ).where(web_sessions.c.token_hash == key)
            ).one_or_none()
        if row is None:
            return None
        user, created, last_seen = row[0], utc(row[1]), utc(row[2])
        if not self.policy.alive(created, last_seen, now):
            self.end(token)
            return None
        if self.policy.stale(last_seen, now):
            with self._engine.begin() as connection:
                connection.execute(
                    update(web_sessions)
                    .where(web_sessions.c.token_hash == key)
                    .values(last_seen_at=now)
                )
        return Session(user, session_csrf(self._secret, token))

    def end(self, token: str | None) -> None:
        if not token:
            return
        with self._engine.begin() as connection:
            connection.execute(
                delete(web_sessions).where(web_sessions.c.token_hash == token_hash(token))
            )

    def end_all(self, user: str) -> int:
        with self._engine.begin() as connection:
            ended = connection.execute(
                delete(web_sessions).where(web_sessions.c.user_name == user)
            ).rowcount
        return int(ended)

    def _expired(self, now: datetime) -> ColumnElement[bool]:
        return or_(
            web_sessions.c.created_at <= now - timedelta(seconds=self.policy.absolute),
            web_sessions.c.last_seen_at <= now - timedelta(seconds=self.policy.idle),
        )
