"""Coverage fixtures: the shipped covenants compiled, demo traffic, and stores of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from services.config import Loaded, Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.coverage.store import CoverageStore, SqlCoverageStore
from services.coverage.testing import MemoryCoverageStore
from services.database.engine import make_engine
from services.keys.testing import MemoryKeyStore
from tests.coverage.webhub import signed_in, web_hub
from tests.router.helpers import COVENANTS, NOW, traffic

__all__ = ["signed_in", "web_hub"]  # fixtures of the page tests

STORE_KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def loaded() -> Loaded:
    paths = Paths.from_env({})
    result = load_policy(
        COVENANTS,
        paths.schemas,
        paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()),
        today=NOW.date(),
        demo=True,
    )
    assert result.policy is not None, [str(p) for p in result.checked.problems]
    return result


@pytest.fixture(scope="session")
def signals() -> list[dict[str, object]]:
    """Three months of demo traffic (September to November 2026)."""
    return traffic(700, seed=21)


@pytest.fixture(scope="session")
def raw(signals: list[dict[str, object]]) -> list[bytes]:
    return [orjson.dumps(s) for s in signals]


@pytest.fixture(params=STORE_KINDS)
def coverage_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CoverageStore]:
    if request.param == "memory":
        yield MemoryCoverageStore()
        return
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'audit.db'}"
    )
    engine = make_engine(url)
    store = SqlCoverageStore(engine)
    store.create_schema()
    yield store
    engine.dispose()
