"""The `schakel up` banner: it says which covenants are illustrations and whether TEST keys
count, and it never cuts a path or a command, whatever the output is."""

from __future__ import annotations

import io
from datetime import date

import pytest
from rich.console import Console

from services.config import ROOT
from services.core.covenant.loader import load_files
from services.hub.up import SUGGESTED, _covenant_lines, print_banner

pytestmark = pytest.mark.timeout(30)


def test_the_banner_names_the_illustrations_and_the_key_mode() -> None:
    covenants = [i.covenant for i in load_files([ROOT / "covenants"]).covenants]
    deployed = "\n".join(_covenant_lines(covenants, False, date(2026, 11, 22)))
    assert "4 version(s), 3 in force today" in deployed
    assert "ILLUSTRATIONS" in deployed and "drugslocaties-nh@2025.1" in deployed
    assert "TEST keys are refused" in deployed
    demo = "\n".join(_covenant_lines(covenants, True, date(2026, 11, 22)))
    assert "demo mode: the demo partners' TEST keys are accepted" in demo


LONG_PATH = "/home/someone/projects/schakel/checkouts/feature-branch/var/state/broker-data"
LINES = [
    f"[b]broker[/b]     embedded tansu on 127.0.0.1:40425 (data: {LONG_PATH})",
    "[b]web[/b]        http://127.0.0.1:8470/ (first: schakel users add NAME --role admin)",
    *(f"{label:<15}{command}" for label, command in SUGGESTED),
]
WHOLE = [LONG_PATH, "schakel users add NAME --role admin", *(c for _, c in SUGGESTED)]


def shown(**options: object) -> str:
    out = io.StringIO()
    console = Console(file=out, highlight=False, soft_wrap=True, color_system=None, **options)  # type: ignore[arg-type]
    print_banner(console, "Schakel hub is up", LINES)
    return out.getvalue()


def test_piped_output_of_80_columns_keeps_every_path_and_command_on_one_line():
    text = shown()  # a file is not a terminal: Rich assumes 80 columns
    assert "Schakel hub is up" in text
    for whole in WHOLE:
        assert any(whole in line for line in text.splitlines()), whole
    assert "data: …" not in text and "…" not in text


def test_a_narrow_terminal_gets_whole_lines_without_a_frame_to_split_them():
    text = shown(force_terminal=True, width=60)
    for whole in WHOLE:
        assert any(whole in line for line in text.splitlines()), whole
    assert "│" not in text, "no border in the middle of a wrapped path"


def test_a_wide_terminal_gets_the_panel():
    text = shown(force_terminal=True, width=200)
    assert "╭" in text and "│" in text
    for whole in WHOLE:
        assert any(whole in line for line in text.splitlines()), whole
