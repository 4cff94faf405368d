"""The session store's rules, on the real table and on the in-memory double alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.audit.store import SqlAuditStore
from services.database.engine import make_engine
from services.web.sessions import SessionPolicy, SessionStore, SqlSessionStore, session_csrf
from services.web.testing import MemorySessionStore
from services.web.users import UserStore

SECRET = b"k" * 32
POLICY = SessionPolicy(idle=600, absolute=3600)


@dataclass
class Clock:
    now: datetime = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite", "memory", pytest.param("postgres", marks=pytest.mark.postgres)])
def sessions(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> Iterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore(SECRET, POLICY, clock)
        return
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        SqlAuditStore.open(url).close()  # the migrations make the tables
    else:
        url = f"sqlite:///{tmp_path / 'web.db'}"
    engine = make_engine(url)
    users = UserStore(engine, kdf_cost=8)
    users.create_schema()
    for name in ("pia", "piet"):
        users.add(name, "correct horse battery", "admin")
    yield SqlSessionStore(engine, SECRET, POLICY, clock)
    engine.dispose()


def test_a_started_session_is_found_with_its_csrf_token(sessions: SessionStore):
    session, token = sessions.start("pia")
    assert sessions.find(token) == session
    assert session.user == "pia"
    assert session.csrf == session_csrf(SECRET, token) != token


def test_unknown_empty_and_oversized_tokens_find_nothing(sessions: SessionStore):
    sessions.start("pia")
    for token in [None, "", "no-such-token", "x" * 10_000]:
        assert sessions.find(token) is None


def test_ending_a_session_ends_only_that_one(sessions: SessionStore):
    _, first = sessions.start("pia")
    _, second = sessions.start("pia")
    sessions.end(first)
    sessions.end(first)  # twice is harmless
    sessions.end(None)
    assert sessions.find(first) is None
    assert sessions.find(second) is not None


def test_ending_all_of_a_users_sessions(sessions: SessionStore):
    tokens = [sessions.start("pia")[1] for _ in range(3)]
    _, other = sessions.start("piet")
    assert sessions.end_all("pia") == 3
    assert [sessions.find(t) for t in tokens] == [None, None, None]
    assert sessions.find(other) is not None


def test_idle_expiry_is_pushed_back_by_use(sessions: SessionStore, clock: Clock):
    _, token = sessions.start("pia")
    for _ in range(10):
        clock.advance(300)
        assert sessions.find(token) is not None
    clock.advance(600)
    assert sessions.find(token) is None
    clock.advance(-600)  # a refused session stays gone, even if the clock steps back
    assert sessions.find(token) is None


def test_absolute_expiry_holds_however_busy(sessions: SessionStore, clock: Clock):
    _, token = sessions.start("pia")
    for _ in range(11):
        clock.advance(300)
        assert sessions.find(token) is not None
    clock.advance(300)
    assert sessions.find(token) is None


def test_use_is_recorded_at_most_once_a_minute(sessions: SessionStore, clock: Clock):
    """A find within a minute of the last recorded use need not write; the idle limit is still
    kept to within that minute."""
    _, token = sessions.start("pia")
    clock.advance(30)
    assert sessions.find(token) is not None  # not written: last use stays at the start
    clock.advance(575)
    assert sessions.find(token) is None


def test_policy_refuses_nonsense_lifetimes():
    for idle, absolute in [(0, 10), (20, 10), (-1, -1)]:
        with pytest.raises(ValueError, match="idle"):
            SessionPolicy(idle=idle, absolute=absolute)
