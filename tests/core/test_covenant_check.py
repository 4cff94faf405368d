"""`schakel covenant check`: every problem kind, with file, line and a fix hint."""

from __future__ import annotations

from datetime import date

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


def only_error(text: str, *more: str, today: date = TODAY) -> str:
    result = checked(text, *more, today=today)
    assert len(result.errors) == 1, [str(p) for p in result.problems]
    return str(result.errors[0])


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_shipped_covenants_check_clean():
    result = check(load_files([COVENANTS]), REGISTRY, REFERENCE, today=TODAY)
    assert result.ok, "\n".join(str(p) for p in result.problems)
    assert len(result.covenants) >= 4
    assert {c.covenant.covenant for c in result.covenants} >= {
        "drugslocaties-nh",
        "schimmige-schuren",
        "nh-drugsalert",
    }


def test_housing_type_from_an_energy_partner_is_named_once_among_its_consequences():
    text = covenant_text(
        ANOMALY_RULE.replace("energy.consumption_anomaly.v1", "housing.observation.v1")
    )
    errors = checked(text).errors
    assert sum("is a energy partner" in str(p) for p in errors) == 1


def test_valid_covenant_has_no_problems():
    result = checked(covenant_text(ANOMALY_RULE))
    assert result.problems == []
    assert len(result.rules) == 1


@pytest.mark.parametrize(
    ("old", "new", "fragment", "needle"),
    [
        ("from: [liander]", "from: [enexis]", "unknown partner 'enexis'", "from: [enexis]"),
        ("to: [riec-nh]", "to: [riec-zz]", "unknown recipient 'riec-zz'", "to: [riec-zz]"),
        ("to: [riec-nh]", "to: [liander]", "'liander' is not a recipient", "to: [liander]"),
        (
            "types: [energy.consumption_anomaly.v1]",
            "types: [energy.consumption_anomoly.v1]",
            "unknown signal type",
            "types:",
        ),
        ("score: keep", "scor: keep", "field 'scor' is not in the schema", "share:"),
        ("score: keep", "score: pseudonymise", "only identifier fields", "share:"),
        ("score: keep", "score: generalise:week", "date or date-time", "share:"),
        ('"generalise:postcode4"', '"generalise:band:1"', "applies to numbers", "share:"),
        ("score: keep", "score: shred", "unknown share 'shred'", "share:"),
        ("purpose: signalering", "purpose: winst", "purpose 'winst'", "purpose: winst"),
        ("&& data.score >= 0.8", "&& data.score >=", "condition does not compile", "when:"),
        ("regions.riec_nh", "regions.riec_zz", "condition does not compile", "when:"),
        ("data.score >= 0.8", "data.scroe >= 0.8", "reads 'data.scroe'", "when:"),
        ("retention: P180D", "retention: 180 days", "ISO 8601 duration", "retention:"),
        ("article:", "artikel:", "unknown key", "artikel:"),
    ],
)
def test_each_problem_names_file_line_and_fix(old, new, fragment, needle):
    text = covenant_text(ANOMALY_RULE.replace(old, new))
    assert new in text
    errors = [str(p) for p in checked(text).errors]
    matching = [m for m in errors if fragment in m]
    assert len(matching) == 1, errors
    message = matching[0]
    assert message.startswith(f"covenant-0.yaml:{line_of(text, needle)}:")
    assert "(fix: " in message


def test_identifier_keep_is_refused_even_when_reidentification_is_allowed():
    """`reidentify: on-request` (four eyes, per request) never turns into "always in the clear"
    (plain disclosure is its own declaration: tests/core/test_plain_identifiers.py)."""
    text = covenant_text(ANOMALY_RULE.replace("ean: pseudonymise", "ean: keep"))
    assert "reidentify: on-request" in text
    message = only_error(text)
    assert "raw ean" in message and "plain_identifiers" in message
    never = text.replace("reidentify: on-request", "reidentify: never")
    assert "raw ean" in only_error(never)


def test_expired_covenant_is_a_warning_and_allows_nothing():
    """Ending a covenant narrows what flows, so it must load (a router reloads it at once)."""
    text = covenant_text(ANOMALY_RULE, valid="{from: 2020-01-01, until: 2025-12-31}")
    result = checked(text)
    assert result.ok
    warnings = [str(p) for p in result.problems if p.severity == "warning"]
    assert any("expired on 2025-12-31" in w for w in warnings)
    assert any(w.startswith(f"covenant-0.yaml:{line_of(text, 'valid:')}:") for w in warnings)


def test_expired_version_superseded_by_a_newer_one_is_history_not_an_error():
    old = covenant_text(ANOMALY_RULE, version='"1"', valid="{from: 2020-01-01, until: 2024-12-31}")
    new = covenant_text(ANOMALY_RULE, version='"2"', valid="{from: 2025-01-01, until: 2027-12-31}")
    assert checked(old, new).ok


def test_versions_in_force_on_the_same_day_are_an_error():
    a = covenant_text(ANOMALY_RULE, version='"1"', valid="{from: 2024-01-01, until: 2026-01-31}")
    b = covenant_text(ANOMALY_RULE, version='"2"', valid="{from: 2026-01-01}")
    assert "both in force" in only_error(a, b)


def test_duplicate_version_and_duplicate_rule_id():
    rules = ANOMALY_RULE + ANOMALY_RULE.replace("to: [riec-nh]", "to: [politie-nh]")
    assert "used twice" in only_error(covenant_text(rules))
    one = covenant_text(ANOMALY_RULE)
    assert any("defined twice" in str(p) for p in checked(one, one).errors)


def test_overlapping_rules_that_disagree():
    second = ANOMALY_RULE.replace("id: anomaly-to-riec", "id: anomaly-to-riec-2").replace(
        "score: keep", 'score: "generalise:band:0.1"'
    )
    text = covenant_text(ANOMALY_RULE + second)
    message = only_error(text)
    assert "share differently" in message
    assert message.startswith(f"covenant-0.yaml:{line_of(text, 'id: anomaly-to-riec-2')}:")
    # with different conditions the overlap is only possible, so it is a warning
    disjoint = second.replace("data.score >= 0.8", "data.score >= 0.9")  # a band boundary
    result = checked(covenant_text(ANOMALY_RULE + disjoint))
    assert result.ok
    assert any("first rule wins" in str(p) for p in result.problems)


def test_yaml_syntax_error_has_line_and_column():
    text = covenant_text(ANOMALY_RULE) + "  - id: [unclosed\n"
    message = only_error(text)
    assert "YAML syntax" in message
    assert message.startswith(f"covenant-0.yaml:{len(text.splitlines()) + 1}:")


def test_duplicate_yaml_key_is_reported():
    text = covenant_text(
        ANOMALY_RULE.replace("retention: P180D", "retention: P180D\n  retention: P90D")
    )
    assert "duplicate key 'retention'" in only_error(text)


def test_rule_that_allows_nothing():
    text = covenant_text(ANOMALY_RULE.replace("to: [riec-nh]", "to: []"))
    assert "allows nothing" in only_error(text)


def test_region_selector_that_matches_nothing():
    text = covenant_text(ANOMALY_RULE).replace(
        "{riec: RIEC Noord-Holland}", "{riec: RIEC Atlantis}"
    )
    assert "selects no municipality" in only_error(text)


def test_version_keeps_its_written_form():
    result = checked(covenant_text(ANOMALY_RULE, version="2025.10"))
    assert result.covenants[0].covenant.version == "2025.10"


def test_check_cli_exit_codes(tmp_path):
    from typer.testing import CliRunner

    from services.cli.main import app

    good = tmp_path / "good.yaml"
    good.write_text(covenant_text(ANOMALY_RULE))
    bad = tmp_path / "bad.yaml"
    bad.write_text(covenant_text(ANOMALY_RULE.replace("from: [liander]", "from: [enexis]")))
    runner = CliRunner()
    ok = runner.invoke(app, ["covenant", "check", str(good), "--today", "2026-11-22"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    failed = runner.invoke(app, ["covenant", "check", str(bad), "--today", "2026-11-22"])
    assert failed.exit_code == 1
    assert f"{bad}:" in failed.output and "enexis" in failed.output
    as_json = runner.invoke(
        app, ["covenant", "check", str(bad), "--format", "json", "--today", "2026-11-22"]
    )
    assert '"ok": false' in as_json.output
