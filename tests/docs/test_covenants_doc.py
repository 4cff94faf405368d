"""docs/covenants.md is tested: its example covenant, conditions and console output are real."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from datetime import date

import fastjsonschema
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from services.cli.main import app
from services.config import ROOT
from services.core import strict_json
from services.core.covenant.checker import CONDITION_VARIABLES
from services.core.covenant.condition import compile_condition
from services.core.covenant.jsonschema import covenant_json_schema
from services.core.covenant.loader import covenant_files
from services.core.errors import SignalRejected
from services.core.signing import canonical_envelope, parse_signature, verifies, verify_envelope
from tests.core.builders import checked, policy
from tests.core.test_signing import keys_yaml, signed_covenant

DOC = (ROOT / "docs" / "covenants.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def with_rule(example: str, rule: str) -> str:
    """The example covenant with one more rule at the end of its ``rules``."""
    head, sep, tail = example.partition("\naggregates:")
    return head.rstrip() + "\n" + rule + sep.lstrip("\n") + tail


def test_example_covenant_checks_clean():
    example = blocks("yaml")[0]
    result = checked(example, today=date(2026, 11, 22))
    assert result.ok and not result.problems, [str(p) for p in result.problems]


def test_plain_identifier_example_checks_clean_in_the_example_covenant_and_is_listed():
    example, plain = blocks("yaml")[:2]
    result = checked(with_rule(example, plain), today=date(2026, 11, 22))
    assert result.ok and not result.problems, [str(p) for p in result.problems]
    [listed] = result.plain_rules
    assert listed.rule.id == "tampering-to-riec-plain"
    assert listed.plain_fields == ("ean", "address")
    without = plain.replace("    plain_identifiers:\n", "").split("      legal_basis")[0]
    refused = checked(with_rule(example, without), today=date(2026, 11, 22))
    assert sum("plain_identifiers" in p.hint for p in refused.errors) == 2


@pytest.mark.parametrize("line", [ln for b in blocks("cel") for ln in b.splitlines() if ln.strip()])
def test_condition_examples_compile(line):
    compile_condition(
        line, variables=CONDITION_VARIABLES, constants={"regions": {"riec_nh": ["GM0361"]}}
    )


def test_console_examples_are_the_real_output_of_the_commands_as_printed(tmp_path, monkeypatch):
    """Every `$ schakel …` line runs, in order, in a folder holding a copy of covenants/ (the
    hub's covenant set there); each line after it must appear in its output. A check is run
    as of the doc's day, 2026-11-22 (its warnings depend on the day)."""
    shutil.copytree(ROOT / "covenants", tmp_path / "covenants")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHAKEL_COVENANTS", str(tmp_path / "covenants"))
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCHAKEL_DEMO", raising=False)
    consoles = blocks("console")
    assert len(consoles) >= 2
    ran = 0
    for block in consoles:
        steps = re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]
        for step in steps:
            command, *expected = step.strip("\n").splitlines()
            args = shlex.split(command)
            assert args[0] == "schakel", command
            if args[1:3] == ["covenant", "check"]:
                args += ["--today", "2026-11-22"]
            result = CliRunner().invoke(app, args[1:])
            assert result.exit_code == 0, (command, result.output)
            for line in expected:
                assert line.strip() in result.output, (command, line, result.output)
            ran += 1
    assert ran >= 4


def test_published_schema_is_generated_from_the_model():
    published = json.loads((ROOT / "schemas" / "covenant.schema.json").read_text(encoding="utf-8"))
    assert published == covenant_json_schema(), (
        "regenerate: schakel covenant schema > schemas/covenant.schema.json"
    )


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def test_shipped_covenants_and_doc_example_validate_against_the_published_schema():
    schema = json.loads((ROOT / "schemas" / "covenant.schema.json").read_text(encoding="utf-8"))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"  # fastjsonschema's newest draft
    validate = fastjsonschema.compile(schema)
    documents = [yaml.safe_load(p.read_text()) for p in covenant_files([ROOT / "covenants"])]
    documents.append(yaml.safe_load(blocks("yaml")[0]))
    documents.append(yaml.safe_load(with_rule(blocks("yaml")[0], blocks("yaml")[1])))
    for document in documents:
        validate(_jsonable(document))
    broken = _jsonable(documents[0])
    assert isinstance(broken, dict)
    broken["rules"][0]["share"]["ean"] = "shred"
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate(broken)


def test_signing_example_runs_and_the_hub_verifies_it():
    example, _ = blocks("python")
    scope: dict[str, object] = {}
    exec(compile(example, "docs/covenants.md", "exec"), scope)  # noqa: S102 - our own doc
    signed = scope["signed"]
    private_key = scope["private_key"]
    assert isinstance(signed, dict) and isinstance(private_key, Ed25519PrivateKey)
    key_id, signature = parse_signature(signed["signature"])
    message = canonical_envelope(signed)
    assert key_id == "liander-2026"
    assert verifies(private_key.public_key(), signature, message)
    assert not verifies(private_key.public_key(), signature, message.replace(b"0.93", b"0.94"))


def test_batch_signing_example_runs_and_the_hub_verifies_every_signal():
    _, example = blocks("python")
    scope: dict[str, object] = {}
    exec(compile(example, "docs/covenants.md", "exec"), scope)  # noqa: S102 - our own doc
    batch, private_key = scope["batch"], scope["private_key"]
    assert isinstance(batch, list) and isinstance(private_key, Ed25519PrivateKey)
    registered = keys_yaml(("liander-2026", private_key, None, None))
    keyring = policy(signed_covenant(liander=registered)).keyring
    assert keyring is not None
    day = date(2026, 11, 22)
    for envelope in batch:
        assert verify_envelope(envelope, keyring, day)["size"] == 3
    assert keyring.roots.verifications == 1
    changed = dict(batch[0], data=dict(batch[0]["data"], score=0.5))
    with pytest.raises(SignalRejected, match="batch path"):
        verify_envelope(changed, keyring, day)


def test_documented_rejection_codes_are_the_ones_the_verifier_uses():
    section = DOC.split("**Rejection reasons**", 1)[1].split("##", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    source = (ROOT / "services" / "core" / "signing.py").read_text(encoding="utf-8")
    used = set(re.findall(r'SignalRejected\(\s*"([a-z_]+)"', source))
    assert documented == used


def test_documented_strict_input_codes_are_the_ones_the_hub_uses():
    section = DOC.split("## Input that means one thing", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    source = (ROOT / "services" / "core" / "time_window.py").read_text(encoding="utf-8")
    times = set(re.findall(r'SignalRejected\(\s*"([a-z_]+)"', source))
    assert times == {"time_in_future", "time_too_old"}
    assert documented == (strict_json.CODES - {"unparseable"}) | times
