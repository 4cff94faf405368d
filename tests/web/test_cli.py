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

from services.audit.store import SqlAuditStore
from services.cli import audit_query, users
from services.config import Paths, load_policy
from services.core import records
from services.core.identifiers import normalise
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
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
        COVENANTS, paths.schemas, paths.reference, Pseudonymiser(keys), today=NOW.date(), demo=True
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
        today=NOW.date(), demo=True,  # the demo traffic is signed with the TEST keys
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


def test_users_remove_password_and_scope_are_changed_signed_out_and_audited(tmp_path: Path):
    from services.audit.queries import Filters, Scope, search
    from services.web.sessions import SessionPolicy, SqlSessionStore

    url = f"sqlite:///{tmp_path / 'users.db'}"

    def cli(*args: str, password: str | None = None):
        given = ["--password-stdin"] if password is not None else []
        return runner.invoke(users.app, [*args, *given, "--database", url], input=f"{password}\n")

    assert cli("add", "pia", "--role", "privacy-officer", "--covenant", "a", password="x" * 12)
    engine = make_engine(url)
    store = UserStore(engine)
    sessions = SqlSessionStore(engine, b"s" * 32, SessionPolicy(idle=600, absolute=3600))
    _, token = sessions.start("pia")

    changed = cli("scope", "pia", "--partner", "liander", "--covenant", "b")
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == "pia now sees covenants b and partners liander.\n"
    pia = store.get("pia")
    assert pia is not None and (pia.covenants, pia.partners) == ({"b"}, {"liander"})
    assert sessions.find(token) is not None, "a new scope applies to the next request"
    assert cli("scope", "pia").exit_code == 1, "a new scope or --clear must be given"

    assert cli("password", "pia", password="y" * 12).exit_code == 0
    assert store.authenticate("pia", "y" * 12) is not None
    assert store.authenticate("pia", "x" * 12) is None
    assert sessions.find(token) is None, "a new password signs the user out"

    assert cli("add", "ann", "--role", "admin", password="z" * 12).exit_code == 0
    refused = cli("scope", "ann", "--covenant", "a")
    assert refused.exit_code == 1 and "only a privacy-officer" in refused.output
    listed = cli("list")
    assert listed.stdout.splitlines() == [
        "ann\tadmin\teverything the role allows",
        "pia\tprivacy-officer\tcovenants b and partners liander",
    ]
    _, token = sessions.start("pia")
    assert cli("remove", "pia").exit_code == 0
    assert store.get("pia") is None and sessions.find(token) is None
    assert cli("remove", "pia").exit_code == 1, "no such user"

    found = runner.invoke(
        audit_app(), ["search", "--database", url, "--result", "changed", "--format", "json"]
    )
    assert found.exit_code == 0, found.output
    reasons = [r["reason"] for r in reversed(orjson.loads(found.stdout))]
    page = search(engine, Filters(result="changed"), Scope.everything(), limit=50)
    bodies = [e.body for e in reversed(page.entries)]
    assert [b["reason"] for b in bodies] == reasons
    trail = [(b["action"], b["reason"]) for b in bodies]
    assert trail == [
        ("user-add", "user pia added as privacy-officer, seeing covenants a"),
        ("user-scope", "scope of user pia set: sees covenants b and partners liander"),
        ("user-password", "password of user pia changed; their sessions ended"),
        ("user-add", "user ann added as admin, seeing everything the role allows"),
        ("user-remove", "user pia (privacy-officer) removed and signed out"),
    ]
    assert all(b["actor"].startswith("cli:") for b in bodies)
    assert bodies[1]["user"] == {
        "name": "pia",
        "role": "privacy-officer",
        "covenants": ["b"],
        "partners": ["liander"],
    }
    assert not any("x" * 12 in str(b) or "y" * 12 in str(b) for b in bodies)
    verified = SqlAuditStore.open(url)
    try:
        from services.audit.reading import chain_records
        from services.audit.verify import verify

        assert verify(chain_records(verified), [], {}).ok
    finally:
        verified.close()
    engine.dispose()
