"""An identifier disclosed in plain shows as such: in the covenant report (web page, CSV,
JSON and `schakel audit report`) and on the audit record page (issue 11, item 4)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import orjson
import pytest
from typer.testing import CliRunner

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.core.records import audit_record
from services.database.engine import make_engine
from services.web.users import UserStore
from tests.core.builders import ANOMALY_RULE, NOW, anomaly, covenant_text, keys, policy, signal
from tests.web.conftest import KDF_COST, PASSWORD, Hub, make_app, sign_in
from tests.web.test_cli import audit_app

DECLARED = '  plain_identifiers: {legal_basis: "Opiumwet art. 13b jo. convenant art. 9"}\n'
PLAIN_RULE = ANOMALY_RULE.replace("ean: pseudonymise", "ean: plain") + DECLARED
POLICE_RULE = (
    ANOMALY_RULE.replace("id: anomaly-to-riec", "id: anomaly-to-police")
    .replace("to: [riec-nh]", "to: [politie-nh]")
    .replace("reidentify: on-request", "reidentify: never")
)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """Eight anomalies decided under a covenant whose RIEC rule discloses the EAN in plain."""
    store_keys = keys()
    compiled = policy(covenant_text(PLAIN_RULE + POLICE_RULE), store=store_keys)
    made = []
    for index in range(8):
        decided = compiled.decide(
            signal(anomaly(signal_id=f"liander-{index:06d}", score=0.85 + index / 100)), NOW
        )
        made += [audit_record(d, actor="router") for d in decided]
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('plain') / 'audit.db'}")
    store = SqlAuditStore(engine, Checkpointer(KeyStoreSigner(store_keys)))
    store.create_schema()
    store.record(made, [])
    users = UserStore(engine, kdf_cost=KDF_COST)
    users.create_schema()
    users.add("admin", PASSWORD, "admin")
    yield Hub(engine, store_keys, [], made)
    engine.dispose()


def test_the_record_of_a_plain_disclosure_marks_the_field(hub: Hub):
    client = make_app(hub)
    assert sign_in(client, "admin").status_code == 303
    plain_seq = next(i for i, r in enumerate(hub.records, 1) if r["fields"].get("ean") == "plain")
    page = client.get(f"/exchanges/{plain_seq}").text
    assert "Disclosed in plain:</strong> ean" in page
    assert '<tr class="plain"><td>ean</td><td><strong>plain</strong>' in page
    other_seq = next(
        i
        for i, r in enumerate(hub.records, 1)
        if r["result"] == "delivered" and r["recipient"] == "politie-nh"
    )
    other = client.get(f"/exchanges/{other_seq}").text
    assert "Disclosed in plain" not in other and "<td>pseudonymise</td>" in other
    detail = client.get(f"/api/exchanges/{plain_seq}").json()
    assert detail["fields"]["ean"] == "plain"


def test_the_covenant_report_counts_plain_disclosures_from_the_records(hub: Hub):
    expected = sum(
        1 for r in hub.records if r["result"] == "delivered" and r["fields"].get("ean") == "plain"
    )
    assert expected == 8
    client = make_app(hub)
    assert sign_in(client, "admin").status_code == 303
    report = client.get("/api/report?covenant=test-covenant").json()
    assert report["plain_disclosures"] == {"anomaly-to-riec: ean": expected}
    page = client.get("/report?covenant=test-covenant").text
    assert "Identifiers disclosed in plain" in page
    assert "<strong>anomaly-to-riec: ean</strong></td><td>8</td>" in page
    rows = list(csv.reader(io.StringIO(client.get("/report.csv?covenant=test-covenant").text)))
    assert ["plain_disclosure", "anomaly-to-riec: ean", "8"] in rows


def test_the_cli_report_lists_plain_disclosures(hub: Hub):
    result = CliRunner().invoke(
        audit_app(),
        ["report", "test-covenant", "--database", str(hub.engine.url), "--format", "json"],
    )
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout)["plain_disclosures"] == {"anomaly-to-riec: ean": 8}


def test_a_report_without_plain_disclosures_says_none(hub: Hub):
    client = make_app(hub)
    assert sign_in(client, "admin").status_code == 303
    report = client.get("/api/report?covenant=no-such-covenant").json()
    assert report["plain_disclosures"] == {}


def test_postgresql_counts_plain_disclosures_like_sqlite(hub: Hub, postgres_url: str):
    from services.audit.queries import Period, Scope
    from services.audit.report import covenant_report

    store = SqlAuditStore.open(postgres_url)
    store.record(hub.records, [])
    store.close()
    postgres = make_engine(postgres_url)
    try:
        left = covenant_report(hub.engine, "test-covenant", Period(), Scope.everything())
        right = covenant_report(postgres, "test-covenant", Period(), Scope.everything())
        assert right.plain_disclosures == left.plain_disclosures == [("anomaly-to-riec: ean", 8)]
    finally:
        postgres.dispose()
