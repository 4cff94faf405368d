"""The `schakel up` banner says which covenants are illustrations and whether TEST keys count."""

from __future__ import annotations

from datetime import date

from services.config import ROOT
from services.core.covenant.loader import load_files
from services.hub.up import _covenant_lines


def test_the_banner_names_the_illustrations_and_the_key_mode() -> None:
    covenants = [i.covenant for i in load_files([ROOT / "covenants"]).covenants]
    deployed = "\n".join(_covenant_lines(covenants, False, date(2026, 11, 22)))
    assert "4 version(s), 3 in force today" in deployed
    assert "ILLUSTRATIONS" in deployed and "drugslocaties-nh@2025.1" in deployed
    assert "TEST keys are refused" in deployed
    demo = "\n".join(_covenant_lines(covenants, True, date(2026, 11, 22)))
    assert "demo mode: the demo partners' TEST keys are accepted" in demo
