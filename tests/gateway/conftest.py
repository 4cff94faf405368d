from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from services.database.engine import make_engine
from services.gateway.app import create_gateway_app
from services.gateway.context import Gateway
from services.gateway.tables import prepare_tables
from services.gateway.testing import MemoryBroker
from tests.gateway.helpers import Monotonic, issue_all, make_gateway, memory_broker, sqlite_engine


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = sqlite_engine()
    yield engine
    engine.dispose()


@pytest.fixture
def mem_broker() -> MemoryBroker:
    return memory_broker()


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def gateway(engine: Engine, mem_broker: MemoryBroker, monotonic: Monotonic) -> Gateway:
    return make_gateway(engine, mem_broker, monotonic=monotonic)


@pytest.fixture
def tokens(gateway: Gateway) -> dict[str, str]:
    return issue_all(gateway.tokens)


@pytest.fixture
def http(gateway: Gateway) -> Iterator[TestClient]:
    with TestClient(create_gateway_app(gateway)) as client:
        yield client


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database brought to the newest schema by the migrations (revision 0006 included):
    a SQLite file, or a fresh database on the PostgreSQL test server."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path}/audit.db"
    engine = make_engine(url)
    prepare_tables(engine)
    yield engine
    engine.dispose()
