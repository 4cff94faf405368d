"""The covenant loader and checker take any text: a covenant, or problems with file and line.

A covenant manager's typo must never crash ``schakel covenant check`` or a router reload, and
no input may make loading hang (YAML aliases once could: see corpus/covenant/).
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from services.config import ROOT
from services.core.covenant.checker import check
from services.core.covenant.compiler import compile_policy
from services.core.covenant.loader import LoadResult, covenant_files, parse_covenant
from services.core.pseudonyms import Pseudonymiser
from tests.core.builders import REFERENCE, REGISTRY, TODAY, keys
from tests.fuzz.strategies import fuzz_settings

SHIPPED = covenant_files([ROOT / "covenants"])  # covenants only, not barriers/ or stacking/
TEXTS = [p.read_text(encoding="utf-8") for p in SHIPPED]
PSEUDONYMISER = Pseudonymiser(keys())
# fragments that exercise the YAML reader's corners
YAML_BITS = [
    "&a ",
    "*a",
    "!!python/object/apply:os.system ['true']",
    "!!binary AAAA",
    "? ",
    ": ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "---",
    "...",
    "%YAML 1.1",
    "\t",
    '"\\x',
    "'",
    "|",
    ">",
    "#",
    "~",
    "null",
    "2025-13-45",
    "1e400",
    "0o777",
    "<<: *a",
    "\ufeff",
    "\x00",
    "\u2028",
    "\ud7ff",
]


def assert_reported(result: LoadResult, file: str, text: str) -> None:
    """Either a covenant parsed, or each problem names this file and a line within it."""
    assert result.covenants or result.problems
    lines = text.count("\n") + 2
    for problem in result.problems:
        assert problem.file == file
        assert 0 <= problem.line <= lines, str(problem)
        assert problem.message.strip()
        assert str(problem).startswith(f"{file}:{problem.line}")


@fuzz_settings(300)
@given(st.text(max_size=300))
def test_any_text_loads_or_is_reported_with_a_line(text):
    assert_reported(parse_covenant(text, "fuzz.yaml"), "fuzz.yaml", text)


@st.composite
def mutated_covenants(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(TEXTS)).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "dup", "bit", "indent", "dedent", "cut", "value"]))
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        elif action == "bit":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.sampled_from(YAML_BITS)) + lines[i][at:]
        elif action == "indent":
            lines[i] = "  " + lines[i]
        elif action == "dedent":
            lines[i] = lines[i].lstrip()
        elif action == "cut":
            lines = lines[: i + 1]
        elif ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            value = draw(st.one_of(st.sampled_from(YAML_BITS), st.text(max_size=20)))
            lines[i] = f"{key}: {value}"
        if not lines:
            lines = [""]
    return "\n".join(lines)


@fuzz_settings(300)
@given(mutated_covenants())
def test_mutated_covenants_check_or_report_and_compile_when_clean(text):
    loaded = parse_covenant(text, "mutated.yaml")
    assert_reported(loaded, "mutated.yaml", text)
    checked = check(loaded, REGISTRY, REFERENCE, today=TODAY)
    for problem in checked.problems:
        assert problem.file == "mutated.yaml"
        assert problem.line >= 0 and problem.message.strip()
    if checked.ok:
        policy = compile_policy(checked, REGISTRY, PSEUDONYMISER)
        assert policy.covenants


def test_shipped_covenants_are_in_the_mutation_pool():
    assert len(TEXTS) >= 3 and all(Path(p).suffix == ".yaml" for p in SHIPPED)
