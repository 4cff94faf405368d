"""`schakel outcomes ingest`, `schakel indicators` (table/CSV/JSON), `replay-stacking --record`
and `model-doc` on the demo's traffic and outcomes, against a real SQLite database."""

from __future__ import annotations

import csv
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.audit.store import SqlAuditStore
from services.cli.main import app
from services.config import ROOT
from services.database.engine import make_engine
from services.demo.generator import generate, to_jsonl
from services.web.access_log import AccessLog

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
runner = CliRunner()


@dataclass(frozen=True)
class Hub:
    url: str
    covenants: Path


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("indicators")
    covenants = tmp / "covenants"
    shutil.copytree(ROOT / "covenants", covenants)  # --record writes next to the rule file
    env = {
        "SCHAKEL_KEYS": str(tmp / "keys.json"),
        "SCHAKEL_STATE_DIR": str(tmp / "state"),
        "SCHAKEL_COVENANTS": str(covenants),
        "SCHAKEL_DEMO": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("SCHAKEL_KAFKA_BOOTSTRAP", raising=False)
        traffic = generate(12_000, seed=31, start=datetime(2026, 5, 1, tzinfo=UTC), days=90,
                           outcomes=True)  # fmt: skip
        file = tmp / "demo.jsonl"
        file.write_bytes(to_jsonl(traffic))
        url = f"sqlite:///{tmp / 'hub.db'}"
        result = runner.invoke(app, ["outcomes", "ingest", str(file), "--database", url])
        assert result.exit_code == 0, result.output
        assert "signals indexed" in result.output
        yield Hub(url, covenants)


def invoke(hub: Hub, *args: str) -> str:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SCHAKEL_COVENANTS", str(hub.covenants))
        mp.setenv("SCHAKEL_STATE_DIR", str(hub.covenants.parent / "state"))
        mp.setenv("SCHAKEL_KEYS", str(hub.covenants.parent / "keys.json"))
        mp.setenv("SCHAKEL_DEMO", "1")
        result = runner.invoke(app, [*args, "--database", hub.url])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_json_shows_every_indicator_with_suppressed_counts_and_precision(hub: Hub):
    shown = orjson.loads(invoke(hub, "indicators", "--format", "json"))
    assert shown["threshold"] == 5 and shown["window_days"] == 180
    rows = {(r["dimension"], r["key"]): r for r in shown["rows"]}
    assert {d for d, _ in rows} >= {"type", "partner", "rule"}
    energy = rows[("type", "energy.consumption_anomaly.v1")]
    assert energy["positive"] is not None and energy["positive"] >= 5
    assert 0 < energy["precision"] < 0.2  # most signals lead nowhere
    low, high = energy["precision_ci95"]
    assert low <= energy["precision"] <= high
    assert energy["lead_days_median"] > 0
    for row in shown["rows"]:
        for name in ("positive", "negative", "none"):
            assert row[name] is None or row[name] >= 5
    engine = make_engine(hub.url)
    try:
        assert any(r.route == "indicators" for r in AccessLog(engine).entries())
    finally:
        engine.dispose()


def test_csv_and_table_and_a_month(hub: Hub):
    rows = list(csv.DictReader(io.StringIO(invoke(hub, "indicators", "--by", "partner",
                                                  "--format", "csv"))))  # fmt: skip
    assert rows and {r["dimension"] for r in rows} == {"partner"}
    assert "liander" in {r["key"] for r in rows}
    month = orjson.loads(invoke(hub, "indicators", "--month", "2026-06", "--format", "json"))
    assert month["rows"] and {r["month"] for r in month["rows"]} == {"2026-06"}
    table = invoke(hub, "indicators", "--by", "type")
    assert "Indicators against outcomes" in table and "suppressed" in table


def test_replay_stacking_compares_and_records_a_proposed_change(hub: Hub):
    result = orjson.loads(invoke(hub, "indicators", "replay-stacking", "--min-partner-kinds",
                                 "4", "--record", "--format", "json"))  # fmt: skip
    current, proposed = result["current"], result["proposed"]
    assert current["alerts"] and proposed["alerts"] and proposed["alerts"] < current["alerts"]
    assert proposed["recall"] < current["recall"]  # stricter: fewer found sites alerted
    record = Path(result["record"])
    assert record.parent == hub.covenants / "stacking" / "validation"
    kept = orjson.loads(record.read_bytes())
    assert kept["changes"] == {"min_partner_kinds": 4}
    assert kept["rule"]["sha256"] and kept["current"] == current
    audit = SqlAuditStore(make_engine(hub.url))
    try:
        assert audit.count(action="validate", object="stacking-rule") == 1
    finally:
        audit.close()
    doc = invoke(hub, "indicators", "model-doc")
    for heading in ("## What the rule is", "## On which data", "## How it was validated",
                    "## When", "## Limits"):  # fmt: skip
        assert heading in doc
    assert kept["rule"]["sha256"] in doc
    assert "min_partner_kinds 4" in doc  # the recorded replay is listed
    assert "illustration" in doc
