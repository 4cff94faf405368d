"""Plain identifiers are an explicit act (issue 11, item 4): an identifier reaches a recipient
in the clear only as share value `plain` under a rule that declares `plain_identifiers` with
its legal basis; `keep` and `reidentify: on-request` never imply it; the checker lists such
rules and the audit record names the field `plain`."""

from __future__ import annotations

import json
import shutil

import orjson
import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.core.covenant.checker import check
from services.core.records import audit_record
from services.core.schema_registry import SchemaRegistry, default_schema_dir
from tests.core.builders import (
    ANOMALY_RULE,
    EAN,
    NOW,
    REFERENCE,
    TODAY,
    anomaly,
    checked,
    covenant_text,
    load_texts,
    policy,
    signal,
)

DECLARED = '  plain_identifiers: {legal_basis: "Opiumwet art. 13b jo. convenant art. 9"}\n'
PLAIN_RULE = ANOMALY_RULE.replace("ean: pseudonymise", "ean: plain") + DECLARED


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def errors(text: str) -> list[str]:
    return [str(p) for p in checked(text).errors]


@pytest.mark.parametrize("reidentify", ["on-request", "never"])
def test_keep_on_an_identifier_is_refused_whatever_reidentify_says(reidentify):
    rule = ANOMALY_RULE.replace("ean: pseudonymise", "ean: keep").replace(
        "reidentify: on-request", f"reidentify: {reidentify}"
    )
    text = covenant_text(rule + DECLARED)  # not even a declaration makes `keep` mean plain
    [message] = [m for m in errors(text) if "field 'ean'" in m]
    assert message.startswith(f"covenant-0.yaml:{line_of(text, 'share:')}:")
    assert "`keep` would disclose a raw ean" in message
    assert "write `plain` and declare `plain_identifiers" in message


def test_plain_without_a_declared_legal_basis_is_refused():
    text = covenant_text(ANOMALY_RULE.replace("ean: pseudonymise", "ean: plain"))
    [message] = errors(text)
    assert "`plain` discloses a raw ean" in message
    assert "plain_identifiers: {legal_basis:" in message


@pytest.mark.parametrize("basis", ['""', '"   "', "null"])
def test_the_legal_basis_must_say_something(basis):
    text = covenant_text(PLAIN_RULE.replace('"Opiumwet art. 13b jo. convenant art. 9"', basis))
    assert errors(text), text


def test_plain_on_a_field_that_is_not_an_identifier_is_refused():
    text = covenant_text(PLAIN_RULE.replace("score: keep", "score: plain"))
    [message] = errors(text)
    assert "`plain` is for identifier fields" in message


def test_a_declaration_without_a_plain_field_is_refused():
    text = covenant_text(ANOMALY_RULE + DECLARED)
    [message] = errors(text)
    assert message.startswith(f"covenant-0.yaml:{line_of(text, 'plain_identifiers')}:")
    assert "shares no field as `plain`" in message


def test_a_declared_plain_rule_checks_clean_and_is_listed():
    result = checked(covenant_text(PLAIN_RULE))
    assert result.ok and not result.problems, [str(p) for p in result.problems]
    [listed] = result.plain_rules
    assert listed.plain_fields == ("ean",)
    assert listed.rule.plain_identifiers is not None
    assert listed.rule.plain_identifiers.legal_basis.startswith("Opiumwet")
    assert checked(covenant_text(ANOMALY_RULE)).plain_rules == []


def test_the_recipient_gets_the_canonical_identifier_and_the_audit_record_says_plain():
    compiled = policy(covenant_text(PLAIN_RULE))
    [decision] = compiled.decide(signal(anomaly(ean="8716 8590 0000 0000 11")), NOW)
    assert decision.delivered and decision.payload is not None
    assert decision.payload["ean"] == EAN
    assert decision.disclosed["ean"] == "plain"
    assert "ean" not in decision.pseudonyms
    record = audit_record(decision, actor="test")
    assert record["fields"]["ean"] == "plain"
    assert record["fields"]["address"] == "generalise:postcode4"
    assert EAN not in orjson.dumps(record).decode()  # the audit names how, never the value


def test_an_object_shared_whole_may_not_carry_an_identifier_out(tmp_path):
    schemas = tmp_path / "schemas"
    shutil.copytree(default_schema_dir(), schemas)
    path = schemas / "energy.consumption_anomaly.v1.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["properties"]["period"]["properties"]["meter"] = {
        "type": "string",
        "x-identifier": "ean",
        "x-personal": True,
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    registry = SchemaRegistry.load(schemas)
    result = check(load_texts(covenant_text(ANOMALY_RULE)), registry, REFERENCE, today=TODAY)
    [problem] = result.errors
    assert "would disclose the identifier(s) period.meter" in problem.message
    assert "members one by one" in problem.hint


def test_covenant_check_lists_the_rules_that_disclose_in_plain(tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(covenant_text(PLAIN_RULE), encoding="utf-8")
    runner = CliRunner()
    text = runner.invoke(app, ["covenant", "check", str(path), "--today", "2026-11-22"])
    assert text.exit_code == 0, text.output
    assert "Identifiers disclosed in plain by 1 rule(s):" in text.output
    assert "test-covenant@1/anomaly-to-riec: ean to riec-nh" in " ".join(text.output.split())
    assert "Opiumwet art. 13b" in text.output
    as_json = runner.invoke(
        app, ["covenant", "check", str(path), "--format", "json", "--today", "2026-11-22"]
    )
    [listed] = json.loads(as_json.output)["plain_identifiers"]
    assert listed["rule"] == "anomaly-to-riec" and listed["fields"] == ["ean"]
    assert listed["to"] == ["riec-nh"] and listed["legal_basis"].startswith("Opiumwet")
    assert listed["line"] == line_of(covenant_text(PLAIN_RULE), "- id: anomaly-to-riec")
