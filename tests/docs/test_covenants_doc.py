"""docs/covenants.md is tested: its example covenant, conditions and console output are real."""

from __future__ import annotations

import json
import re
from datetime import date

import fastjsonschema
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from services.cli.main import _register, app
from services.config import ROOT
from services.core import strict_json
from services.core.covenant.checker import CONDITION_VARIABLES
from services.core.covenant.condition import compile_condition
from services.core.covenant.jsonschema import covenant_json_schema
from services.core.covenant.loader import covenant_files
from services.core.signing import canonical_envelope, parse_signature, verifies
from tests.core.builders import checked

DOC = (ROOT / "docs" / "covenants.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def test_example_covenant_checks_clean():
    [example] = blocks("yaml")
    result = checked(example, today=date(2026, 11, 22))
    assert result.ok and not result.problems, [str(p) for p in result.problems]


@pytest.mark.parametrize("line", [ln for b in blocks("cel") for ln in b.splitlines() if ln.strip()])
def test_condition_examples_compile(line):
    compile_condition(
        line, variables=CONDITION_VARIABLES, constants={"regions": {"riec_nh": ["GM0361"]}}
    )


def test_console_example_matches_the_real_output():
    [console] = blocks("console")
    command, expected = console.strip().splitlines()
    assert command == "$ schakel covenant check covenants/"
    _register()
    result = CliRunner().invoke(
        app, ["covenant", "check", str(ROOT / "covenants"), "--today", "2026-11-22"]
    )
    assert result.exit_code == 0, result.output
    assert expected in result.output


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
    for document in documents:
        validate(_jsonable(document))
    broken = _jsonable(documents[0])
    assert isinstance(broken, dict)
    broken["rules"][0]["share"]["ean"] = "shred"
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate(broken)


def test_signing_example_runs_and_the_hub_verifies_it():
    [example] = blocks("python")
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
