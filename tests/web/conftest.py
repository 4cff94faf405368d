"""A SQLite audit store filled by the real core over demo traffic, and a web app on it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.testing import MemoryAuditStore
from services.config import Paths, load_policy
from services.core import records
from services.core.covenant.model import Covenant
from services.core.errors import IdentifierError
from services.core.identifiers import normalise
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.keys.testing import MemoryKeyStore
from services.web.app import create_web_app
from services.web.context import WebSettings
from services.web.index_lag import IndexLagSource, no_kafka
from services.web.sessions import Clock, utc_now
from services.web.throttle import ThrottlePolicy
from services.web.users import UserStore
from tests.router.helpers import COVENANTS, NOW, traffic

PASSWORD = "correct horse battery"
SECRET = b"s" * 32
KDF_COST = 8
USERS: dict[str, tuple[str, list[str], list[str]]] = {
    "admin": ("admin", [], []),
    "manager": ("covenant-manager", [], []),
    "schuren": ("privacy-officer", ["schimmige-schuren"], []),
    "liander": ("privacy-officer", [], ["liander"]),
    "nobody": ("privacy-officer", [], []),
    "analyst": ("riec-analyst", ["drugslocaties-nh"], ["riec-nh"]),
}


@dataclass
class Hub:
    engine: Engine
    keys: MemoryKeyStore
    signals: list[dict[str, Any]]
    records: list[dict[str, Any]]
    covenants: tuple[Covenant, ...] = ()


def build_hub(
    path: Path,
    users: Mapping[str, tuple[str, list[str], list[str]]] = USERS,
    *,
    signals: int = 300,
) -> Hub:
    """An audit store at ``path`` filled by the real core over ``signals`` demo signals (about
    two records each, over three months), stored with signed checkpoints, and ``users``
    (name -> role, covenants, partners). The caller disposes of the engine."""
    keys = MemoryKeyStore.for_tests()
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(keys), today=NOW.date(), demo=True
    )
    assert loaded.policy is not None
    sent = traffic(signals, seed=5)
    made: list[dict[str, Any]] = []
    for signal in sent:
        moment = datetime.fromisoformat(str(signal["time"]))
        outcome = process(orjson.dumps(signal), loaded.registry, loaded.policy, moment)
        made += [records.audit_record(d, actor="router") for d in outcome.decisions]
        if outcome.rejection is not None:
            made.append(records.rejection_record(outcome.rejection, actor="router"))
    engine = make_engine(f"sqlite:///{path}")
    store = SqlAuditStore(engine, Checkpointer(KeyStoreSigner(keys)))
    store.create_schema()
    for start in range(0, len(made), 100):
        store.record(made[start : start + 100], [])
    user_store = UserStore(engine, kdf_cost=KDF_COST)
    user_store.create_schema()
    for name, (role, covenants, partners) in users.items():
        user_store.add(name, PASSWORD, role, covenants=covenants, partners=partners)
    return Hub(engine, keys, sent, made, loaded.policy.covenants)


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """~600 audit records over three months, stored with signed checkpoints."""
    built = build_hub(tmp_path_factory.mktemp("web") / "audit.db")
    yield built
    built.engine.dispose()


UNTHROTTLED = ThrottlePolicy(account_free=10_000, client_free=10_000)
"""The shared hub's apps do not throttle: every test client comes from one address, and the
wrong passwords of a whole session would block it (tests/web/test_throttle.py attacks the
throttle on a database of its own)."""


def make_app(
    hub: Hub,
    clock: Clock = utc_now,
    index_lag: IndexLagSource = no_kafka,
    **settings: Any,
) -> TestClient:
    """The web app on ``hub``; refused sign-ins are audited into memory, so the session's
    shared database keeps exactly the hub's records."""
    settings.setdefault("throttle", UNTHROTTLED)
    app = create_web_app(
        hub.engine,
        hub.keys,
        WebSettings(secret=SECRET, kdf_cost=KDF_COST, **settings),
        clock=clock,
        audit=MemoryAuditStore(),
        index_lag=index_lag,
    )
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def client(hub: Hub) -> TestClient:
    return make_app(hub)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    """Sign in through the form (with its CSRF token); return the response."""
    form = client.get("/sign-in")
    token = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return client.post("/sign-in", data={"name": name, "password": password, "csrf": token})


def csrf_of(client: TestClient) -> str:
    """The CSRF token of the signed-in session, as a page's sign-out form carries it."""
    page = client.get("/integrity")
    return page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def as_user(hub: Hub):
    def signed_in(name: str) -> TestClient:
        client = make_app(hub)
        assert sign_in(client, name).status_code == 303
        return client

    return signed_in


def planted_address(hub: Hub) -> tuple[str, str]:
    """``(as typed in a signal, canonical)`` of the address with records under the most
    covenants: a planted production location that several partners reported."""
    signals = {s["id"]: s for s in hub.signals}
    covenants: dict[str, set[str]] = {}
    typed: dict[str, str] = {}
    for record in hub.records:
        data = signals.get(record["signal_id"], {}).get("data")
        raw = data.get("address") if isinstance(data, dict) else None
        if not isinstance(raw, str) or record["result"] == "rejected":
            continue
        try:
            canonical = normalise("address", raw)
        except IdentifierError:
            continue
        typed.setdefault(canonical, raw)
        covenants.setdefault(canonical, set()).add((record["covenant"] or {}).get("id") or "")
    best = max(covenants, key=lambda c: (len(covenants[c]), c))
    return typed[best], best


def run_verification(client: TestClient) -> dict[str, Any]:
    """Run a verification through the JSON API, wait for it, and return the stored result."""
    started = client.post("/api/integrity/verify", headers={"x-csrf-token": csrf_of(client)})
    assert started.status_code == 202
    assert client.app.state.context.integrity.join(60)  # type: ignore[attr-defined]
    last: dict[str, Any] = client.get("/api/integrity").json()["last"]
    assert last["id"] == started.json()["run"]["id"]
    return last
