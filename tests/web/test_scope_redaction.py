"""A partner-scoped privacy officer sees of each record only its own partner's side.

The hub returns a police finding to the grid operator about the grid operator's own earlier
signal. The return's audit record names both sides: the police's signal id and the
hub-internal pseudonym of the address (origin side), the grid operator's signal id that the
finding answers (recipient side) and the OM's approval signal. Through the web API, a
politie-nh officer must not learn which liander signal named the location, a liander officer
must not learn the police's signal id, the OM's approval id or the hub's pseudonym — while the
hub-wide officer sees the whole record and the stored chain still verifies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.redaction import REDACTED
from services.audit.store import SqlAuditStore
from tests.outcomes import helpers as outcomes
from tests.web.conftest import USERS, Hub, build_hub, make_app, run_verification, sign_in

OFFICERS = {
    **USERS,
    "politie": ("privacy-officer", [], ["politie-nh"]),
    "hubwide": ("admin", [], []),
}


@pytest.fixture(scope="module")
def returned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hub, dict[str, Any]]]:
    """A small audit store with a real approved return (liander's anomaly, the police's
    finding, the OM's approval) among the router's records."""
    built = build_hub(tmp_path_factory.mktemp("redaction") / "audit.db", OFFICERS, signals=20)
    sim = outcomes.make_hub()
    real = outcomes.anomaly()
    sim.feed([real])
    found = outcomes.finding()
    matched, _ = sim.feed([found])
    approved = outcomes.approval(found)
    _, decided = sim.feed([approved])
    [record] = [r for r in decided.audit if r["recipient"] == "liander"]
    assert record["result"] == "delivered"
    store = SqlAuditStore(built.engine, Checkpointer(KeyStoreSigner(built.keys)))
    store.record(matched.audit + decided.audit, [])
    facts = {
        "anomaly": real["id"],
        "finding": found["id"],
        "approval": approved["id"],
        "location": sim.location(),
        "record_id": record["record_id"],
    }
    yield built, facts
    built.engine.dispose()


def _as(hub: Hub, name: str) -> TestClient:
    client = make_app(hub)
    assert sign_in(client, name).status_code == 303
    return client


def _the_return(client: TestClient, record_id: str) -> tuple[dict[str, Any], str]:
    listed = client.get("/api/exchanges", params={"type": "police.location_finding.v1"})
    assert listed.status_code == 200
    [found] = [r for r in listed.json()["records"] if r["record_id"] == record_id]
    one = client.get(f"/api/exchanges/{record_id}")
    assert one.status_code == 200
    page = client.get(f"/exchanges/{record_id}")
    assert page.status_code == 200
    assert one.json()["answers"] == found["answers"]
    return one.json(), listed.text + one.text + page.text


def test_the_police_officer_does_not_learn_which_liander_signal_named_the_location(returned):
    hub, facts = returned
    record, seen = _the_return(_as(hub, "politie"), facts["record_id"])
    assert facts["anomaly"] not in seen
    assert record["answers"] == {
        "source": "liander",
        "signal_id": REDACTED,
        "type": "energy.consumption_anomaly.v1",
    }
    assert record["signal_id"] == facts["finding"]  # its own signal
    assert record["subjects"] == {"address": facts["location"]}  # of its own signal
    assert record["approval"]["signal_id"] == REDACTED
    assert "answers.signal_id" in record["redacted"]


def test_the_liander_officer_does_not_learn_the_polices_or_the_oms_signal_ids(returned):
    hub, facts = returned
    record, seen = _the_return(_as(hub, "liander"), facts["record_id"])
    assert record["answers"]["signal_id"] == facts["anomaly"]  # its own signal
    for theirs in (facts["finding"], facts["approval"], facts["location"]):
        assert theirs not in seen
    assert record["signal_id"] == record["trace_id"] == REDACTED
    assert set(record["subjects"].values()) == {REDACTED}
    assert {"signal_id", "subjects", "approval.signal_id"} <= set(record["redacted"])


def test_the_hub_wide_officer_sees_the_whole_record_and_the_chain_still_verifies(returned):
    hub, facts = returned
    client = _as(hub, "hubwide")
    record, _ = _the_return(client, facts["record_id"])
    assert record["answers"]["signal_id"] == facts["anomaly"]
    assert record["signal_id"] == facts["finding"]
    assert record["approval"]["signal_id"] == facts["approval"]
    assert record["subjects"] == {"address": facts["location"]}
    assert "redacted" not in record
    assert run_verification(client)["ok"] is True
