"""docs/coverage.md: every command it shows exists with the options it uses."""

from __future__ import annotations

import re
import shlex

import pytest
from typer.testing import CliRunner

from services.cli.main import app
from services.config import ROOT

DOC = (ROOT / "docs" / "coverage.md").read_text(encoding="utf-8")
COMMANDS = [
    line.removeprefix("$ schakel ")
    for block in re.findall(r"```console\n(.*?)```", DOC, flags=re.DOTALL)
    for line in block.splitlines()
    if line.startswith("$ schakel ")
]


def test_the_doc_shows_commands():
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_parses(command):
    """``--help`` after the arguments: typer then checks the verb and every option name."""
    args = shlex.split(command)
    words = [a for a in args if not a.startswith("-")]
    verb = words[: 2 if len(words) > 1 and words[1] in {"ingest", "publish", "run"} else 1]
    result = CliRunner().invoke(app, [*verb, "--help"])
    assert result.exit_code == 0, result.output
    for option in (a for a in args if a.startswith("--")):
        assert option in result.output, f"{command}: {option} not an option of {verb}"
