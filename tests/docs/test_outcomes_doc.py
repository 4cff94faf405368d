"""docs/outcomes.md is tested: its covenant checks, its feed message is the real one, its
tables match the schemas and the model, and its commands print what it says."""

from __future__ import annotations

import re
import shlex
import shutil
from datetime import date

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.config import ROOT
from services.core.covenant.model import Rule
from tests.core.builders import REGISTRY, checked
from tests.outcomes.helpers import anomaly, at, envelope, finding, make_hub

DOC = (ROOT / "docs" / "outcomes.md").read_text(encoding="utf-8")
COVENANTS_DOC = (ROOT / "docs" / "covenants.md").read_text(encoding="utf-8")


def blocks(language: str, text: str = DOC) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def test_the_example_covenant_checks_without_errors_and_compiles_its_returns():
    [example] = blocks("yaml")
    result = checked(example, today=date(2026, 11, 22))
    assert result.ok, [str(p) for p in result.errors]
    # what remains are warnings that the example's suppliers registered no keys
    assert all("key" in p.message for p in result.problems), [str(p) for p in result.problems]
    returns = {c.rule.id for c in result.rules if c.rule.return_to}
    assert returns == {"finding-back-to-grid-operator", "nothing-found-back"}


def test_the_return_rule_in_covenants_md_is_the_one_in_this_covenant():
    rule = next(b for b in blocks("yaml", COVENANTS_DOC) if "return_to:" in b)
    [example] = blocks("yaml")
    assert rule.strip() in example


def test_the_feed_message_is_what_the_hub_sends():
    hub = make_hub()
    hub.feed([anomaly(signal_id="liander-000123")])
    hub.feed([finding(signal_id="politie-nh-2026-004711")])
    approval = envelope(
        "om-nh",
        "prosecution.case_approval.v1",
        {"municipality": "GM0361", "outcome_source": "politie-nh",
         "outcome_signal_id": "politie-nh-2026-004711", "decision": "approved",
         "decided_at": at(1)},
        days_ago=1,
        signal_id="om-nh-2026-000031",
    )  # fmt: skip
    _, decided = hub.feed([approval])
    sent = {i.recipient: orjson.loads(i.value) for i in decided.feed}
    documented = [orjson.loads(b) for b in blocks("json") if '"answers"' in b]
    assert documented == [sent["liander"]]
    [record] = [r for r in decided.audit if r["recipient"] == "liander"]
    assert record["approval"] == {"by": "om-nh", "decision": "approved",
                                  "signal_id": "om-nh-2026-000031"}  # fmt: skip
    assert '"approval": {"by": "om-nh", "decision": "approved",' in DOC


def test_the_approval_example_is_a_valid_approval():
    example = next(b for b in blocks("json") if "case_approval" in b)
    data = orjson.loads(example)["data"]
    REGISTRY.get("prosecution.case_approval.v1").validate(data, signal_id="doc")


def test_the_outcome_types_table_matches_the_schemas():
    section = DOC.split("## Outcome types", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z_.0-9]+)` \| `([a-z_]+)` \| ([a-z ,()A-Z]+) \|", section,
                      flags=re.MULTILINE)  # fmt: skip
    documented = {t: c for t, c, _ in rows}
    shipped = {t: REGISTRY.get(t).outcome for t in REGISTRY.types() if REGISTRY.get(t).outcome}
    assert documented == shipped
    for signal_type, _, kinds in rows:
        named = {k.strip() for k in re.sub(r"\(.*?\)", "", kinds).split(",")}
        assert named == set(REGISTRY.get(signal_type).partner_kinds), signal_type


def test_the_grammar_table_names_the_rule_keys():
    section = DOC.split("## For covenant managers", 1)[1].split("\n## ", 1)[0]
    keys = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    fields = {f.alias or name for name, f in Rule.model_fields.items()}
    assert {"return_to", "match", "approval"} <= keys <= fields


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_console_examples_are_the_real_output_of_the_commands(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "covenants", tmp_path / "covenants")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHAKEL_COVENANTS", str(tmp_path / "covenants"))
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("SCHAKEL_DEMO", "1")
    monkeypatch.delenv("SCHAKEL_KAFKA_BOOTSTRAP", raising=False)
    ran = 0
    for block in blocks("console"):
        for step in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
            command, *expected = step.strip("\n").splitlines()
            args = shlex.split(command)
            assert args[0] == "schakel", command
            result = CliRunner().invoke(app, args[1:])
            assert result.exit_code == 0, (command, result.output)
            for line in expected:
                assert line.strip() in result.output, (command, line, result.output)
            ran += 1
    assert ran >= 8
    assert (tmp_path / "covenants" / "stacking" / "iipsy.model.md").exists()
    assert list((tmp_path / "covenants" / "stacking" / "validation").glob("iipsy-v1-*.json"))
