"""docs/covenants.md is tested: its example covenant, conditions and console output are real."""

from __future__ import annotations

import json
import re
from datetime import date

import fastjsonschema
import pytest
import yaml
from typer.testing import CliRunner

from services.cli.main import _register, app
from services.config import ROOT
from services.core.covenant.checker import CONDITION_VARIABLES
from services.core.covenant.condition import compile_condition
from services.core.covenant.jsonschema import covenant_json_schema
from services.core.covenant.loader import covenant_files
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
