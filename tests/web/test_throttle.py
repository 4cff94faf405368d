"""Sign-in is throttled per account and per client, with back-off kept in the database (so
every web worker agrees), and every refused sign-in is an audit record without the password."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from services.audit.queries import Filters, Scope, search
from services.audit.store import SqlAuditStore
from services.audit.verification import verify_store
from services.database.engine import make_engine
from services.database.tables.web import web_sign_in_throttle
from services.keys.testing import MemoryKeyStore
from services.web.app import create_web_app
from services.web.context import WebSettings
from services.web.sign_in_audit import client_reference
from services.web.testing import MemorySignInThrottle
from services.web.throttle import SignInThrottle, SqlSignInThrottle, ThrottlePolicy
from services.web.users import UserStore
from tests.web.conftest import KDF_COST, PASSWORD, SECRET

WRONG = "not the password at all"
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Site:
    engine: Engine
    clock: Clock

    def client(self, address: str = "192.0.2.10") -> TestClient:
        """A browser at ``address`` on a web worker of its own (same database)."""
        app = create_web_app(
            self.engine,
            MemoryKeyStore.for_tests(),
            WebSettings(secret=SECRET, kdf_cost=KDF_COST),
            clock=self.clock,
        )
        return TestClient(app, follow_redirects=False, client=(address, 50000))

    def refused_records(self) -> list[dict[str, Any]]:
        page = search(self.engine, Filters(result="refused"), Scope.everything(), limit=500)
        return [entry.body for entry in page.entries]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'web.db'}"
    )
    engine = make_engine(url)
    SqlAuditStore(engine).create_schema()
    users = UserStore(engine, kdf_cost=KDF_COST)
    users.add("pia", PASSWORD, "privacy-officer", covenants=["schimmige-schuren"])
    users.add("admin", PASSWORD, "admin")
    yield Site(engine, Clock())
    engine.dispose()


def answer(client: TestClient, name: str, password: str) -> Any:
    form = client.get("/sign-in")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post("/sign-in", data={"name": name, "password": password, "csrf": token})


def attempt(client: TestClient, name: str, password: str) -> int:
    return int(answer(client, name, password).status_code)


def test_a_brute_force_is_blocked_and_the_right_password_waits_for_the_back_off(site: Site):
    client = site.client()
    statuses = [attempt(client, "pia", WRONG) for _ in range(25)]
    assert statuses[:6] == [401] * 6  # five free failures, the sixth starts a 1 s back-off
    assert statuses[6:] == [429] * 19  # answered without looking at the password
    assert attempt(client, "pia", PASSWORD) == 429  # the right one too, straight after
    site.clock.advance(0.9)
    assert attempt(client, "pia", PASSWORD) == 429
    site.clock.advance(0.2)
    assert attempt(client, "pia", PASSWORD) == 303


def test_the_back_off_doubles_and_says_when_to_come_back(site: Site):
    client = site.client()
    for _ in range(6):
        attempt(client, "pia", WRONG)
    waits = [1]
    for _ in range(4):
        site.clock.advance(waits[-1] + 0.01)  # the back-off ended: one more guess is checked
        assert attempt(client, "pia", WRONG) == 401
        blocked = answer(client, "pia", PASSWORD)
        assert blocked.status_code == 429
        assert "Too many failed sign-ins" in blocked.text
        waits.append(int(blocked.headers["retry-after"]))
    assert waits == [1, 2, 4, 8, 16]


def test_another_client_and_another_worker_are_throttled_on_the_account_too(site: Site):
    attacker = site.client("198.51.100.7")
    for _ in range(6):
        attempt(attacker, "pia", WRONG)
    elsewhere = site.client("203.0.113.99")  # another address, another web worker process
    assert attempt(elsewhere, "pia", PASSWORD) == 429
    assert attempt(elsewhere, "admin", PASSWORD) == 303  # other accounts are not affected


def test_one_client_trying_many_accounts_is_throttled(site: Site):
    spray = site.client("198.51.100.8")
    statuses = [attempt(spray, f"user-{n}", WRONG) for n in range(21)]
    assert statuses == [401] * 21  # twenty free failures per client, the 21st blocks it
    assert attempt(spray, "admin", PASSWORD) == 429
    assert attempt(site.client("192.0.2.11"), "admin", PASSWORD) == 303


def test_a_success_clears_the_accounts_count(site: Site):
    client = site.client()
    for _ in range(5):
        attempt(client, "pia", WRONG)
    assert attempt(client, "pia", PASSWORD) == 303
    client.cookies.clear()
    assert [attempt(client, "pia", WRONG) for _ in range(6)] == [401] * 6


def test_refused_sign_ins_are_audit_records_without_the_password(site: Site):
    client = site.client("198.51.100.9")
    for _ in range(6):
        attempt(client, "pia", WRONG)
    attempt(client, "pia", WRONG)  # blocked: refused before any check, not written one by one
    attempt(client, "hunter2-typed-as-name", WRONG)  # blocked client? no: 7 < 20 failures
    records = site.refused_records()
    assert len(records) == 7
    mine = [r for r in records if r["account"] == "pia"]
    assert len(mine) == 6
    assert {r["action"] for r in records} == {"sign-in"}
    assert sorted(r["backoff_seconds"] for r in mine) == [0, 0, 0, 0, 0, 1.0]
    unknown = [r for r in records if r["account"] is None]
    assert len(unknown) == 1 and unknown[0]["reason"] == "no such account"
    everything = orjson.dumps(records).decode()
    assert WRONG not in everything and PASSWORD not in everything
    assert "hunter2-typed-as-name" not in everything  # a name that is no account is not kept
    assert "198.51.100.9" not in everything
    assert {r["client"] for r in records} == {client_reference(SECRET, "198.51.100.9")}
    assert verify_store(SqlAuditStore(site.engine), {}).ok  # chained like every record
    officer = site.client("192.0.2.12")
    assert attempt(officer, "admin", PASSWORD) == 303
    page = officer.get("/exchanges", params={"result": "refused"})
    assert page.status_code == 200 and page.text.count("web.sign-in") >= 7


def test_the_throttle_table_holds_no_names_or_addresses_and_forgets(site: Site):
    throttle = SqlSignInThrottle(site.engine, SECRET, ThrottlePolicy(), site.clock)
    for n in range(30):
        throttle.failed(f"someone-{n}", "198.51.100.10")
    with site.engine.connect() as connection:
        keys = connection.execute(select(web_sign_in_throttle.c.key)).scalars().all()
    assert len(keys) == 31
    assert not any("someone" in key or "198.51" in key for key in keys)
    assert throttle.wait("anyone", "198.51.100.10") > 0  # the client is blocked
    site.clock.advance(ThrottlePolicy().max_seconds + ThrottlePolicy().window_seconds + 1)
    assert throttle.wait("anyone", "198.51.100.10") == 0
    throttle.failed("late", "192.0.2.50")  # prunes what is forgotten
    with site.engine.connect() as connection:
        left = connection.execute(select(func.count()).select_from(web_sign_in_throttle))
        assert left.scalar_one() == 2


def test_concurrent_failures_in_several_workers_are_all_counted(site: Site):
    from concurrent.futures import ThreadPoolExecutor

    policy = ThrottlePolicy(account_free=100, client_free=100)
    workers = [SqlSignInThrottle(site.engine, SECRET, policy, site.clock) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: workers[n % 4].failed("pia", f"10.0.0.{n}"), range(40)))
    with site.engine.connect() as connection:
        counts = connection.execute(select(web_sign_in_throttle.c.failures)).scalars().all()
    assert max(counts) == 40  # the account's row: every failure counted once


@pytest.mark.parametrize("kind", ["sql", "memory"])
def test_the_memory_double_keeps_the_same_rules(tmp_path: Path, kind: str):
    clock = Clock()
    if kind == "sql":
        engine = make_engine(f"sqlite:///{tmp_path / 'throttle.db'}")
        UserStore(engine).create_schema()
        throttle: SignInThrottle = SqlSignInThrottle(engine, SECRET, ThrottlePolicy(), clock)
    else:
        throttle = MemorySignInThrottle(SECRET, ThrottlePolicy(), clock)
    backoffs = [throttle.failed("pia", "192.0.2.1") for _ in range(8)]
    assert backoffs == [0, 0, 0, 0, 0, 1, 2, 4]
    assert throttle.wait("pia", "192.0.2.2") == 4
    assert throttle.wait("admin", "192.0.2.1") == 0
    clock.advance(4)
    assert throttle.wait("pia", "192.0.2.2") == 0
    throttle.succeeded("pia")
    assert throttle.failed("pia", "192.0.2.3") == 0
    clock.advance(ThrottlePolicy().window_seconds + 1)  # forgotten: the count starts over
    assert [throttle.failed("admin", "192.0.2.4") for _ in range(6)] == [0, 0, 0, 0, 0, 1]
