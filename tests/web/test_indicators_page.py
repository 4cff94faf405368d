"""The indicators page and its JSON: signed in, access-logged, suppressed numbers only, the
same for every role, charts and a trend per month."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient

from services.core.outcomes.indicators import DEFAULT_WINDOW_DAYS
from services.core.pseudonyms import Pseudonymiser
from services.demo.generator import generate
from services.outcomes.batch import OutcomeStep, Record
from services.outcomes.indicators import indicator_release
from services.outcomes.store import SqlOutcomeStore
from services.web.access_log import AccessLog
from tests.outcomes.helpers import make_hub as outcome_policy
from tests.web.conftest import Hub, build_hub, make_app, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def web_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    built = build_hub(tmp_path_factory.mktemp("indicators-web") / "audit.db", signals=100)
    loaded = outcome_policy(keys=built.keys)
    step = OutcomeStep.build(loaded.registry, loaded.policy, Pseudonymiser(built.keys))
    store = SqlOutcomeStore(built.engine)
    store.create_schema()
    traffic = generate(9000, seed=31, start=datetime(2026, 5, 1, tzinfo=UTC), days=90,
                       outcomes=True)  # fmt: skip
    lines = [orjson.dumps(e) for e in traffic.signals + traffic.outcomes]
    for start in range(0, len(lines), 1000):
        chunk = [Record("", line) for line in lines[start : start + 1000]]
        store.write(step.extract(chunk, datetime.now(UTC), at_signal_time=True).entries)
    yield built
    built.engine.dispose()


@pytest.fixture
def signed_in(web_hub: Hub) -> Callable[[str], TestClient]:
    def client(name: str) -> TestClient:
        made = make_app(web_hub)
        assert sign_in(made, name).status_code == 303
        return made

    return client


def test_the_page_needs_a_sign_in(web_hub: Hub):
    client = make_app(web_hub)
    assert client.get("/indicators").status_code == 303
    assert client.get("/api/indicators").status_code == 401


def test_every_role_sees_the_same_suppressed_release(web_hub: Hub, signed_in):
    shown = {name: signed_in(name).get("/api/indicators").json()
             for name in ("admin", "manager", "liander", "nobody")}  # fmt: skip
    assert len({str(v) for v in shown.values()}) == 1
    released = shown["admin"]
    expected = indicator_release(
        SqlOutcomeStore(web_hub.engine), window=timedelta(days=DEFAULT_WINDOW_DAYS)
    )
    assert released == orjson.loads(orjson.dumps(expected.to_json()))
    assert released["threshold"] == 5
    assert any(r["positive"] for r in released["rows"] if r["dimension"] == "type")
    for row in released["rows"]:
        assert all(row[k] is None or row[k] >= 5 for k in ("positive", "negative", "none"))


def test_the_page_shows_the_table_charts_and_a_trend(signed_in):
    client = signed_in("manager")
    page = client.get("/indicators?by=type&key=energy.consumption_anomaly.v1")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Indicators tested against outcomes" in html
    assert "energy.consumption_anomaly.v1" in html and "&lt;5" in html
    assert "Signals followed by a finding" in html and "Precision, per mille" in html
    assert "Precision per month: energy.consumption_anomaly.v1" in html
    assert "<polyline" in html and "<script" not in html
    for by in ("partner", "rule", "stacking"):
        assert client.get(f"/indicators?by={by}").status_code == 200
    bad = client.get("/indicators?by=municipality")
    assert bad.status_code == 400 and "unknown view" in bad.text


def test_views_are_access_logged(web_hub: Hub, signed_in):
    client = signed_in("manager")
    assert client.get("/indicators?by=partner").status_code == 200
    logged = [e for e in AccessLog(web_hub.engine).entries(user="manager")
              if e.route == "indicators"]  # fmt: skip
    assert logged and logged[0].detail == {"by": "partner", "key": None}
