"""A web app over a SQLite database holding demo audit records (tests/web/conftest.py's
``build_hub``) and the coverage facts of the same signals; imported by the coverage and
barrier conftests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from services.config import Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.coverage.ingest import ingest
from services.coverage.store import SqlCoverageStore
from tests.router.helpers import COVENANTS, NOW
from tests.web.conftest import Hub, build_hub, make_app, sign_in


@pytest.fixture(scope="session")
def web_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    built = build_hub(tmp_path_factory.mktemp("coverage-web") / "audit.db", signals=600)
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS,
        paths.schemas,
        paths.reference,
        Pseudonymiser(built.keys),
        today=NOW.date(),
        demo=True,
    )
    assert loaded.policy is not None
    store = SqlCoverageStore(built.engine)
    store.create_schema()
    ingest([orjson.dumps(s) for s in built.signals], loaded.registry, loaded.policy, store, NOW)
    yield built
    built.engine.dispose()


@pytest.fixture
def signed_in(web_hub: Hub) -> Callable[[str], TestClient]:
    def client(name: str) -> TestClient:
        made = make_app(web_hub)
        assert sign_in(made, name).status_code == 303
        return made

    return client
