"""``schakel covenant check`` checks the stacking file and the stacking purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
from typer.testing import CliRunner

from services.cli.main import app
from tests.conftest import ROOT


def check(path: Path) -> tuple[int, list[dict[str, object]]]:
    result = CliRunner().invoke(app, ["covenant", "check", str(path), "--format", "json"])
    return result.exit_code, orjson.loads(result.stdout)["problems"]


def copy_covenants(tmp_path: Path) -> Path:
    target = tmp_path / "covenants"
    shutil.copytree(ROOT / "covenants", target)
    return target


def test_the_shipped_stacking_rule_passes(tmp_path: Path) -> None:
    code, problems = check(copy_covenants(tmp_path))
    assert code == 0, problems


def test_a_stacking_rule_without_the_stacking_purpose_is_an_error(tmp_path: Path) -> None:
    folder = copy_covenants(tmp_path)
    file = folder / "schimmige-schuren" / "2024.1.yaml"
    text = file.read_text(encoding="utf-8")
    file.write_text(text.replace("  datastapeling:", "  other-purpose:"), encoding="utf-8")
    stacking_line = next(
        n for n, line in enumerate(text.splitlines(), 1) if line.strip() == "stacking: true"
    )
    code, problems = check(folder)
    assert code == 1
    [problem] = [p for p in problems if "stacking purpose" in str(p["message"])]
    assert problem["file"] == str(file) and problem["line"] == stacking_line
    assert "datastapeling" in str(problem["hint"])


def test_a_broken_stacking_file_is_reported_with_its_line(tmp_path: Path) -> None:
    folder = copy_covenants(tmp_path)
    file = folder / "stacking" / "iipsy.yaml"
    text = file.read_text(encoding="utf-8")
    text = text.replace("min_partner_kinds: 3", "min_partner_kinds: 1")
    text = text.replace("  residents.anonymous_tip.v1: 0.6", "  residents.anonymous_tips.v1: 0.6")
    file.write_text(text, encoding="utf-8")
    code, problems = check(folder)
    assert code == 1
    lines = text.splitlines()
    found = {(p["line"], str(p["message"]).split(":")[0]) for p in problems}
    assert (lines.index("min_partner_kinds: 1") + 1, "min_partner_kinds") in found
    file.write_text(text.replace("min_partner_kinds: 1", "min_partner_kinds: 3"), encoding="utf-8")
    code, problems = check(folder)
    [problem] = [p for p in problems if p["severity"] == "error"]
    assert "unknown signal type residents.anonymous_tips.v1" in str(problem["message"])
    assert problem["line"] == lines.index("  residents.anonymous_tips.v1: 0.6") + 1


def test_yaml_aliases_are_refused() -> None:
    from services.core.stacking.config import parse_stacking

    text = "a: &x [1, 2]\nb: [*x, *x]\nstacking: iipsy\n"
    [problem] = parse_stacking(text, "bomb.yaml").problems
    assert problem.line == 1 and "aliases" in problem.message  # the anchored node
