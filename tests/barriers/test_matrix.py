"""The barrier matrix (pure), the signal volumes it shows (audit log), `schakel barriers` and
the page."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta

import orjson
import pytest
from typer.testing import CliRunner

from services.audit.queries import Scope
from services.cli.main import app
from services.config import Paths
from services.core.barriers.loader import load_models, parse_model
from services.core.barriers.matrix import NO_RECIPIENT, NO_SOURCE, barrier_matrix
from services.core.covenant.loader import parse_covenant
from services.core.schema_registry import SchemaRegistry
from services.coverage.volumes import signal_volumes
from services.web.access_log import AccessLog
from tests.router.helpers import NOW
from tests.web.conftest import make_app

GAPLESS_STEP = "cannabis.cultivate"
NO_SOURCE_STEPS = {"cannabis.organise_finance", "cannabis.harvest", "cannabis.launder"}


@pytest.fixture(scope="module")
def registry():
    return SchemaRegistry.load(Paths.from_env({}).schemas)


@pytest.fixture(scope="module")
def covenants():
    from services.core.covenant.loader import load_files

    loaded = load_files(Paths.from_env({}).covenants)
    return [c.covenant for c in loaded.covenants if c.covenant.in_force(NOW.date())]


def test_steps_without_source_or_recipient_are_gaps(registry, covenants):
    rows = {r.step: r for r in barrier_matrix(load_models(), registry, covenants, {})}
    assert {s for s, r in rows.items() if NO_SOURCE in r.gaps} >= NO_SOURCE_STEPS
    cultivate = rows[GAPLESS_STEP]
    assert cultivate.gaps == ()
    assert "energy.consumption_anomaly.v1" in cultivate.signal_types
    assert {"liander", "meld-misdaad-anoniem"} <= set(cultivate.sources)
    assert "riec-nh" in cultivate.recipients
    assert "campagneteam-nh" not in cultivate.recipients  # it receives aggregates only
    assert any(r.startswith("nh-drugsalert@") for r in cultivate.rules)
    assert rows["synthetic.acquire_raw_materials"].sources == ("chemiehandel-nh",)


def test_volumes_are_summed_over_the_signal_types_of_a_step(registry, covenants):
    volumes = {"energy.consumption_anomaly.v1": 7, "water.abnormal_use.v1": 3, "other": 100}
    rows = {r.step: r for r in barrier_matrix(load_models(), registry, covenants, volumes)}
    assert rows["cannabis.cultivate"].volume == 10
    assert rows["cannabis.fit_out"].volume == 7
    assert rows["cannabis.harvest"].volume == 0


COVENANT = """\
covenant: test-stacking
version: "1"
title: Only for stacking
legal_basis: ["AVG art. 6 lid 1 sub e"]
purposes: {datastapeling: Stapelen}
valid: {from: 2025-01-01}
parties:
  pwn: {name: PWN, kind: water, roles: [supplier]}
  riec-nh: {name: RIEC, kind: riec, roles: [recipient]}
rules:
  - id: water-for-stacking
    article: "art. 1"
    purpose: datastapeling
    from: [pwn]
    types: [water.sewer_contamination_spike.v1]
    retention: P30D
    stacking: true
"""
MODEL = """\
model: synthetic
title: One step
steps:
  - id: synthetic.dispose_waste
    name: Dispose of waste
    opportunities: [Dumping]
    facilitators: {}
"""


def test_a_rule_that_delivers_to_no_one_leaves_a_recipient_gap(registry):
    (covenant,) = parse_covenant(COVENANT, "t.yaml").covenants
    (model,) = parse_model(MODEL, "m.yaml").models
    (row,) = barrier_matrix([model], registry, [covenant.covenant], {})
    assert row.sources == ("pwn",)
    assert row.gaps == (NO_RECIPIENT,)
    assert row.rules == ("test-stacking@1/water-for-stacking",)


def _by_hand(records, since, until, origins=None) -> Counter:
    seen: dict[str, set] = {}
    for r in records:
        moment = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        if r["result"] == "rejected" or not (since <= moment <= until) or r["object"] is None:
            continue
        if origins is not None and r["origin"] not in origins and r["recipient"] not in origins:
            continue
        seen.setdefault(r["object"], set()).add((r["origin"], r["signal_id"]))
    return Counter({t: len(s) for t, s in seen.items()})


def test_volumes_count_each_signal_once_in_the_last_30_days_within_scope(web_hub):
    now = NOW - timedelta(days=20)
    volumes = signal_volumes(web_hub.engine, now)
    assert volumes == _by_hand(web_hub.records, now - timedelta(days=30), now)
    assert sum(volumes.values()) > 50
    scoped = signal_volumes(web_hub.engine, now, Scope(partners=frozenset({"liander"})))
    assert scoped == _by_hand(web_hub.records, now - timedelta(days=30), now, {"liander"})
    assert set(scoped) < set(volumes)


runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path, monkeypatch, web_hub):
    monkeypatch.delenv("SCHAKEL_COVENANTS", raising=False)
    return str(web_hub.engine.url)


def test_cli_json_table_and_csv(cli_env):
    shown = runner.invoke(app, ["barriers", "--format", "json", "--database", cli_env])
    assert shown.exit_code == 0, shown.output
    rows = orjson.loads(shown.stdout)
    assert len(rows) == 15
    assert {r["step"] for r in rows if NO_SOURCE in r["gaps"]} >= NO_SOURCE_STEPS

    only = runner.invoke(
        app, ["barriers", "--model", "cannabis", "--format", "csv", "--database", cli_env]
    )
    assert only.exit_code == 0, only.output
    lines = list(csv.DictReader(io.StringIO(only.stdout)))
    assert [r["step"].split(".")[0] for r in lines] == ["cannabis"] * 7
    harvest = next(r for r in lines if r["step"] == "cannabis.harvest")
    assert harvest["gaps"] == f"{NO_SOURCE};{NO_RECIPIENT}"

    table = runner.invoke(app, ["barriers", "--model", "synthetic", "--database", cli_env])
    assert table.exit_code == 0 and "no signal" in table.output
    assert "own reconstruction in the spirit of the CCV" in " ".join(table.output.split())

    unknown = runner.invoke(app, ["barriers", "--model", "cocaine", "--database", cli_env])
    assert unknown.exit_code == 2 and "cannabis or synthetic" in unknown.output


def test_the_page_shows_the_matrix_with_gaps_and_is_logged(web_hub, signed_in):
    assert make_app(web_hub).get("/barriers").status_code == 303
    client = signed_in("liander")
    page = client.get("/barriers?model=synthetic")
    assert page.status_code == 200, page.text
    assert "synthetic.launder" in page.text and "cannabis.harvest" not in page.text
    assert "no signal source" in page.text and 'class="gap"' in page.text
    assert "own reconstruction in the spirit of the CCV" in " ".join(page.text.split())
    rows = client.get("/api/barriers").json()
    assert len(rows) == 15
    logged = AccessLog(web_hub.engine).entries(user="liander")
    assert [e.route for e in logged[:2]] == ["api/barriers", "barriers"]
    assert logged[1].detail == {"model": "synthetic"}
