"""The legal footing a covenant version claims must be right for its dates, and visible.

The WGS (Stb. 2024, 198) is in force since 1 March 2025: a version valid before then cannot
rest on it. Private-law parties exchanging criminal-law data need AVG art. 10 / UAVG art. 33.
A covenant names its DPIA. Shipped covenants say they are illustrations.
"""

from __future__ import annotations

import pytest

from services.core.covenant.checker import check
from services.core.covenant.loader import load_files
from tests.core.builders import (
    ANOMALY_RULE,
    COVENANTS,
    REFERENCE,
    REGISTRY,
    TODAY,
    checked,
    covenant_text,
)

WGS = "Wet gegevensverwerking door samenwerkingsverbanden (WGS), art. 2.1"


def with_basis(*basis: str, valid: str = "{from: 2025-01-01, until: 2027-12-31}") -> str:
    text = covenant_text(ANOMALY_RULE, valid=valid)
    old = 'legal_basis: ["AVG art. 6 lid 1 sub e", "AVG art. 10 jo. UAVG art. 33"]'
    assert old in text
    listed = ", ".join(f'"{b}"' for b in basis)
    return text.replace(old, f"legal_basis: [{listed}]")


@pytest.mark.parametrize(
    "cited", [WGS, "WGS art. 2.3", "wet gegevensverwerking door samenwerkingsverbanden"]
)
def test_citing_the_wgs_before_it_was_in_force_is_an_error(cited: str):
    text = with_basis("AVG art. 6 lid 1 sub e", "AVG art. 10 jo. UAVG art. 33", cited)
    [error] = checked(text).errors
    assert "in force since 2025-03-01" in error.message
    assert "valid from 2025-01-01" in error.message
    assert error.line == next(n for n, ln in enumerate(text.splitlines(), 1) if "legal_basis" in ln)


def test_citing_the_wgs_from_the_day_it_is_in_force_is_fine():
    text = with_basis(
        "AVG art. 6 lid 1 sub e",
        "AVG art. 10 jo. UAVG art. 33",
        WGS,
        valid="{from: 2025-03-01, until: 2027-12-31}",
    )
    assert checked(text).problems == []


def test_private_parties_without_a_basis_for_criminal_law_data_is_a_warning():
    result = checked(with_basis("AVG art. 6 lid 1 sub e"))
    assert result.ok
    [warning] = result.problems
    assert "private-law parties (liander)" in warning.message
    assert "AVG art. 10 / UAVG art. 33" in warning.message


def test_a_covenant_without_a_dpia_is_a_warning():
    text = covenant_text(ANOMALY_RULE).replace(
        '            dpia: {reference: "DPIA test covenant", date: 2024-12-01}\n', ""
    )
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("dpia:")) + "\n"
    result = checked(text)
    assert result.ok
    [warning] = result.problems
    assert "names no DPIA" in warning.message and "AVG art. 35" in warning.message


def test_the_dpia_and_illustration_fields_are_read():
    text = covenant_text(ANOMALY_RULE).replace(
        "title: Test covenant", "title: Test covenant\nillustration: Modelled on nothing real."
    )
    [item] = checked(text).covenants
    assert item.covenant.illustration == "Modelled on nothing real."
    assert item.covenant.dpia is not None
    assert item.covenant.dpia.reference == "DPIA test covenant"
    assert str(item.covenant.dpia.day) == "2024-12-01"


def test_every_shipped_covenant_is_marked_as_an_illustration_and_cites_law_for_its_dates():
    result = check(load_files([COVENANTS]), REGISTRY, REFERENCE, today=TODAY)
    assert result.ok, [str(p) for p in result.errors]
    assert result.covenants
    for item in result.covenants:
        text = item.covenant.illustration
        assert text and "not the text of" in text and "invented" in text, item.file
        assert "(illustratie)" in item.covenant.title
    legal = [p for p in result.problems if "UAVG" in p.message or "in force since" in p.message]
    assert legal == []
