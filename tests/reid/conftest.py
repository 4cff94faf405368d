"""An audit store filled by the real core over demo traffic, web users and a workflow on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from services.audit.store import SqlAuditStore
from services.config import Paths, load_policy
from services.core import records
from services.core.covenant.model import Covenant
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.keys.file_store import FileKeyStore
from services.reid.workflow import Reidentification
from services.web.users import UserStore
from tests.router.helpers import COVENANTS, NOW, traffic

PASSWORD = "correct horse battery"
KDF_COST = 8
USERS: dict[str, tuple[str, list[str], list[str]]] = {
    "admin": ("admin", [], []),
    "manager": ("covenant-manager", [], []),
    "riec-officer": ("privacy-officer", [], ["riec-nh"]),
    "drugs-officer": ("privacy-officer", ["drugslocaties-nh"], []),
    "other-officer": ("privacy-officer", ["schimmige-schuren"], []),
}


@dataclass
class Clock:
    """A clock the tests move by hand."""

    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Hub:
    path: Path
    engine: Engine
    store: SqlAuditStore
    keys: FileKeyStore
    covenants: tuple[Covenant, ...]
    records: list[dict[str, Any]]
    users: UserStore
    signals: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    """Audit records of 200 demo signals decided by the real policy, and the web users."""
    keys = FileKeyStore.create(tmp_path / "keys.json")
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(keys), today=NOW.date(), demo=True
    )
    assert loaded.policy is not None
    signals = traffic(200, seed=5)
    made: list[dict[str, Any]] = []
    for signal in signals:
        moment = datetime.fromisoformat(str(signal["time"]))
        outcome = process(orjson.dumps(signal), loaded.registry, loaded.policy, moment)
        made += [records.audit_record(d, actor="router") for d in outcome.decisions]
    path = tmp_path / "audit.db"
    engine = make_engine(f"sqlite:///{path}")
    store = SqlAuditStore(engine)
    store.create_schema()
    store.record(made, [])
    users = UserStore(engine, kdf_cost=KDF_COST)
    users.create_schema()
    for name, (role, covenants, partners) in USERS.items():
        users.add(name, PASSWORD, role, covenants=covenants, partners=partners)
    yield Hub(
        path,
        engine,
        store,
        keys,
        loaded.policy.covenants,
        made,
        users,
        {str(s["id"]): s for s in signals},
    )
    engine.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workflow(hub: Hub, clock: Clock) -> Reidentification:
    flow = Reidentification(
        hub.engine, hub.store, Pseudonymiser(hub.keys), hub.covenants, clock=clock
    )
    flow.create_schema()
    return flow
