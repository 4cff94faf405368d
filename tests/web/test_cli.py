"""``schakel users add`` and ``schakel audit search|report|subject`` against a real database."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime
from pathlib import Path

import orjson
import typer
from typer.testing import CliRunner

from services.audit.engine import make_engine
from services.audit.store import SqlAuditStore
from services.cli import audit_query, users
from services.config import Paths, load_policy
from services.core import records
from services.core.identifiers import normalise
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.keys.file_store import FileKeyStore
from services.keys.testing import MemoryKeyStore
from services.web.access_log import AccessLog
from services.web.users import UserStore
from tests.router.helpers import COVENANTS, NOW, traffic
from tests.web.conftest import Hub

runner = CliRunner()


def audit_app() -> typer.Typer:
    app = typer.Typer()
    audit_query.register(app)
    return app


def test_users_add_reads_the_password_from_stdin_and_scopes(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'users.db'}"
    args = ["add", "pia", "--role", "privacy-officer", "--covenant", "schimmige-schuren"]
    result = runner.invoke(
        users.app, [*args, "--password-stdin", "--database", url], input="long enough pw\n"
    )
    assert result.exit_code == 0, result.output
    assert "long enough pw" not in result.output
    engine = make_engine(url)
    store = UserStore(engine)
    user = store.authenticate("pia", "long enough pw")
    assert user is not None and user.covenants == {"schimmige-schuren"}
    assert store.authenticate("pia", "long enough pX") is None
    again = runner.invoke(
        users.app, [*args, "--password-stdin", "--database", url], input="long enough pw\n"
    )
    assert again.exit_code == 1 and "exists already" in again.output
    short = runner.invoke(
        users.app,
        ["add", "x", "--role", "admin", "--password-stdin", "--database", url],
        input="s\n",
    )
    assert short.exit_code == 1
    wrong = runner.invoke(
        users.app,
        ["add", "y", "--role", "root", "--password-stdin", "--database", url],
        input="long enough pw\n",
    )
    assert wrong.exit_code == 1 and "unknown role" in wrong.output
    engine.dispose()


def test_search_and_report_print_json_and_csv(hub: Hub):
    url = str(hub.engine.url)
    found = runner.invoke(
        audit_app(),
        ["search", "--database", url, "--result", "withheld", "--limit", "5", "--format", "json"],
    )
    assert found.exit_code == 0, found.output
    rows = orjson.loads(found.stdout)
    assert len(rows) == 5 and {r["result"] for r in rows} == {"withheld"}
    table = runner.invoke(
        audit_app(),
        ["search", "--database", url, "--covenant", "nh-drugsalert"],
        env={"COLUMNS": "300"},
    )
    assert table.exit_code == 0 and "nh-drugsalert" in table.output
    report = runner.invoke(
        audit_app(), ["report", "drugslocaties-nh", "--database", url, "--format", "csv"]
    )
    assert report.exit_code == 0
    counted = [r for r in csv.DictReader(io.StringIO(report.stdout)) if r["section"] == "result"]
    expected = Counter(
        r["result"] for r in hub.records if (r["covenant"] or {}).get("id") == "drugslocaties-nh"
    )
    assert {r["key"]: int(r["#count"]) for r in counted} == dict(expected)
    bad = runner.invoke(audit_app(), ["search", "--database", url, "--from", "yesterday"])
    assert bad.exit_code == 2
    logged = {e.route for e in AccessLog(hub.engine).entries(limit=20)}
    assert {"cli/search", "cli/report"} <= logged


def test_subject_finds_records_under_every_key_version(tmp_path: Path):
    keys = FileKeyStore.create(tmp_path / "keys.json")
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(keys), today=NOW.date()
    )
    assert loaded.policy is not None
    signals = [s for s in traffic(120, seed=5) if isinstance(s.get("data"), dict)]
    made = []
    for signal in signals:
        moment = datetime.fromisoformat(str(signal["time"]))
        outcome = process(orjson.dumps(signal), loaded.registry, loaded.policy, moment)
        made += [records.audit_record(d, actor="router") for d in outcome.decisions]
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = SqlAuditStore.open(url)
    store.record(made, [])
    store.close()
    keys.rotate_pseudonym_key()  # the records were made under version 1
    ean_signal = next(s for s in signals if s["data"].get("ean"))
    canonical = normalise("ean", ean_signal["data"]["ean"])
    same = {
        s["id"]
        for s in signals
        if s["data"].get("ean") and normalise("ean", s["data"]["ean"]) == canonical
    }
    expected = {r["record_id"] for r in made if r["signal_id"] in same and r["subjects"]}
    args = ["subject", "--kind", "ean", "--identifier-stdin", "--database", url]
    result = runner.invoke(
        audit_app(),
        [*args, "--keys", str(keys.path), "--format", "json"],
        input=f"{ean_signal['data']['ean']}\n",
    )
    assert result.exit_code == 0, result.output
    rows = orjson.loads(result.stdout)
    assert {r["record_id"] for r in rows} == expected != set()
    assert ean_signal["data"]["ean"] not in result.stdout
    engine = make_engine(url)
    logged = AccessLog(engine).entries(limit=1)[0]
    assert logged.route == "cli/subject" and logged.detail["pseudonyms"] == 2
    engine.dispose()


def test_search_shows_why_a_record_was_rejected_or_withheld(tmp_path: Path):
    paths = Paths.from_env({})
    loaded = load_policy(
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(MemoryKeyStore.for_tests()),
        today=NOW.date(),
    )  # fmt: skip
    assert loaded.policy is not None
    made = []
    for raw in [*map(orjson.dumps, traffic(40, seed=3)), b'{"specversion": "1.0"']:
        outcome = process(raw, loaded.registry, loaded.policy, NOW)
        made += [records.audit_record(d, actor="router") for d in outcome.decisions]
        if outcome.rejection is not None:
            made.append(records.rejection_record(outcome.rejection, actor="router"))
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = SqlAuditStore.open(url)
    store.record(made, [])
    store.close()
    found = runner.invoke(
        audit_app(), ["search", "--database", url, "--result", "rejected", "--format", "json"]
    )
    [row] = orjson.loads(found.stdout)
    assert row["reason"].startswith("unparseable: ")
    table = runner.invoke(
        audit_app(), ["search", "--database", url, "--result", "rejected"], env={"COLUMNS": "400"}
    )
    assert "reason" in table.output and "unparseable: " in table.output
    withheld = runner.invoke(
        audit_app(), ["search", "--database", url, "--result", "withheld", "--format", "csv"]
    )
    reasons = [r["reason"] for r in csv.DictReader(io.StringIO(withheld.stdout))]
    assert reasons and all(reasons)
