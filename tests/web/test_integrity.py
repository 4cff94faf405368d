"""The integrity page shows the stored result of the last verification; only an explicit POST
runs one, in the background, and its result survives a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from services.audit import verification as verification_module
from services.audit import verify as verify_module
from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.verify import Verification
from services.database.engine import make_engine
from services.web import routes_integrity
from services.web.access_log import AccessLog
from services.web.integrity import DONE, FAILED, INTERRUPTED, RUNNING, IntegrityRuns
from services.web.users import UserStore
from tests.web.conftest import (
    KDF_COST,
    PASSWORD,
    Hub,
    csrf_of,
    make_app,
    run_verification,
    sign_in,
)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts full verifications the web app runs (each appends the records it read)."""
    calls: list[int] = []
    real = verify_module.verify

    def counting(*args: object, **kwargs: object) -> Verification:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        calls.append(result.records)
        return result

    monkeypatch.setattr(verification_module, "verify", counting)
    return calls


def test_viewing_the_page_never_verifies(as_user, verifications: list[int]):
    client = as_user("manager")
    for _ in range(3):
        assert client.get("/integrity").status_code == 200
        assert client.get("/api/integrity").status_code == 200
    assert verifications == []


def test_a_post_runs_one_verification_and_the_page_shows_its_result(
    as_user, hub: Hub, verifications: list[int]
):
    client = as_user("schuren")
    form = {"csrf": csrf_of(client)}
    response = client.post("/integrity/verify", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/integrity"
    assert client.app.state.context.integrity.join(60)
    assert verifications == [len(hub.records)]
    page = client.get("/integrity").text
    assert "audit log intact" in page
    assert "schuren" in page and f"<dd>{len(hub.records)} (up to seq" in page
    last = client.get("/api/integrity").json()["last"]
    assert last["state"] == DONE and last["ok"] is True
    assert last["requested_by"] == "schuren" and last["records"] == len(hub.records)
    assert last["outcome"]["checkpoints"] >= 1
    assert verifications == [len(hub.records)]  # reading the result did not verify again
    routes = [e.route for e in AccessLog(hub.engine).entries(user="schuren", limit=5)]
    assert "integrity-run" in routes


def test_running_needs_the_csrf_token(as_user, verifications: list[int]):
    client = as_user("admin")
    assert client.post("/integrity/verify", data={}).status_code == 403
    assert client.post("/integrity/verify", data={"csrf": "forged"}).status_code == 403
    assert client.post("/api/integrity/verify").status_code == 403
    forged = {"x-csrf-token": "forged"}
    assert client.post("/api/integrity/verify", headers=forged).status_code == 403
    assert client.get("/integrity/verify").status_code == 405
    assert verifications == []


def test_the_last_result_survives_a_restart(as_user, hub: Hub):
    last = run_verification(as_user("admin"))
    restarted = make_app(hub)
    assert sign_in(restarted, "manager").status_code == 303
    assert restarted.get("/api/integrity").json()["last"] == last
    assert last["message"] in restarted.get("/integrity").text


@pytest.fixture
def small_hub(tmp_path: Path, hub: Hub) -> Iterator[Hub]:
    """A store of its own (40 of the hub's records, checkpointed) that a test may tamper with."""
    engine = make_engine(f"sqlite:///{tmp_path / 'small.db'}")
    store = SqlAuditStore(engine, Checkpointer(KeyStoreSigner(hub.keys)))
    store.create_schema()
    for start in range(0, 40, 10):
        store.record(hub.records[start : start + 10], [])
    UserStore(engine, kdf_cost=KDF_COST).create_schema()
    UserStore(engine, kdf_cost=KDF_COST).add("admin", PASSWORD, "admin")
    yield Hub(engine, hub.keys, hub.signals, hub.records[:40])
    engine.dispose()


def test_a_tampered_log_is_stored_as_not_intact_with_the_position(small_hub: Hub):
    with small_hub.engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE audit_records SET body = replace(body, 'router', 'intruder') WHERE seq = 17"
            )
        )
    client = make_app(small_hub)
    assert sign_in(client, "admin").status_code == 303
    last = run_verification(client)
    assert last["ok"] is False
    assert last["outcome"]["findings"][0]["seq"] == 17
    page = client.get("/integrity").text
    assert "NOT intact" in page and "at seq 17" in page


def _runs(engine: Engine, check: Callable[[], Verification]) -> IntegrityRuns:
    return IntegrityRuns(engine, check)


def test_one_verification_at_a_time(small_hub: Hub):
    release = threading.Event()
    calls: list[str] = []

    def slow_check() -> Verification:
        calls.append("run")
        assert release.wait(30)
        return routes_integrity.check(small_hub.engine, small_hub.keys, None)

    runs = _runs(small_hub.engine, slow_check)
    first, started = runs.start("admin")
    assert started and first.state == RUNNING
    again, started_again = runs.start("manager")
    assert not started_again and again.id == first.id
    assert runs.running() == first
    release.set()
    assert runs.join(30)
    assert calls == ["run"]
    finished = runs.last_finished()
    assert finished is not None and finished.id == first.id and finished.state == DONE
    assert runs.running() is None


def test_a_failing_verification_is_stored_with_its_error_type_only(small_hub: Hub):
    def broken() -> Verification:
        raise RuntimeError("could not read 871687400001234566")

    runs = _runs(small_hub.engine, broken)
    run, _ = runs.start("admin")
    assert runs.join(30)
    failed = runs.get(run.id)
    assert failed is not None and failed.state == FAILED and failed.ok is None
    assert failed.outcome == {"error": "RuntimeError"}
    assert "871687400001234566" not in repr(failed.to_json())


def test_a_run_cut_off_by_a_restart_is_shown_as_interrupted(small_hub: Hub):
    moment = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    with small_hub.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO integrity_runs (requested_by, started_at, state) "
                "VALUES ('admin', :at, 'running')"
            ),
            {"at": moment},
        )
    client = make_app(small_hub)  # the app starting is the restart
    assert sign_in(client, "admin").status_code == 303
    status = client.get("/api/integrity").json()
    assert status["running"] is None
    assert status["last"]["state"] == INTERRUPTED
    assert "interrupted by a restart" in client.get("/integrity").text


def test_runs_are_stored_and_read_back_on_postgresql(postgres_url: str, small_hub: Hub):
    SqlAuditStore.open(postgres_url).close()  # the migrations make the tables
    engine = make_engine(postgres_url)
    try:
        runs = _runs(engine, lambda: routes_integrity.check(small_hub.engine, small_hub.keys, None))
        run, started = runs.start("admin")
        assert started and runs.join(30)
        finished = runs.last_finished()
        assert finished is not None and finished.id == run.id
        assert finished.state == DONE and finished.ok is True and finished.records == 40
        assert finished.started_at.tzinfo == UTC and finished.finished_at is not None
        assert finished.finished_at >= finished.started_at
        assert IntegrityRuns(engine, runs_check_unused).recover() == 0
    finally:
        engine.dispose()


def runs_check_unused() -> Verification:
    raise AssertionError("recover() must not verify")
