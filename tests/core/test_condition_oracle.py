"""Conditions are not an oracle: `covenant check` refuses every way a `when` could test an
identifier or personal field, allows only the documented forms, and reports comparisons that
can never hold (issue 11, item 3)."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from services.core.covenant.cel_ast import parse
from services.core.covenant.checker import CONDITION_VARIABLES
from services.core.covenant.condition import compile_condition
from services.core.covenant.condition_fields import ALLOWED_FORMS, check_fields
from services.core.schema_registry import FieldInfo
from tests.core.builders import ANOMALY_RULE, anomaly, checked, covenant_text, signal

CONDITION = "data.municipality in regions.riec_nh && data.score >= 0.8"
EAN = "871685900000000011"


def rule_with(condition: str, types: str = "energy.consumption_anomaly.v1") -> str:
    """The anomaly rule with ``condition`` as a YAML block scalar (any CEL text survives);
    for other signal types it shares only the municipality."""
    rule = ANOMALY_RULE.replace(f"when: {CONDITION}", "when: |-\n    " + condition)
    if types != "energy.consumption_anomaly.v1":
        rule = rule.replace("types: [energy.consumption_anomaly.v1]", f"types: [{types}]")
        rule = rule[: rule.index("  share:")] + "  share: {municipality: keep}\n  retention: P1D\n"
    return covenant_text(rule)


def when_line(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if "when:" in line)


def errors_of(condition: str, types: str = "energy.consumption_anomaly.v1") -> list[str]:
    """The errors about the condition (a supplier of the wrong kind for ``types`` aside, and
    reads finer than the rule shares, which tests/core/test_condition_granularity.py covers)."""
    text = rule_with(condition, types)
    errors = [
        p
        for p in checked(text).errors
        if "is a energy partner" not in p.message and "finer than rule" not in p.message
    ]
    for problem in errors:
        assert problem.line == when_line(text), str(problem)
        assert problem.hint, str(problem)
    return [str(p) for p in errors]


# Every route to a raw identifier an author with bad intent might try.
EVASIONS = [
    f'data.ean == "{EAN}"',
    f'data.ean != "{EAN}"',
    f'!(data.ean == "{EAN}")',
    'data.address.matches("^1608")',
    'matches(data.address, "^1608")',
    'data.address.startsWith("1608")',
    'data.address.endsWith("12A")',
    'data.address.contains("AB 1")',
    'data.ean < "8716"',
    "size(data.ean) == 18",
    "data.ean.size() == 18",
    f'data.ean in ["{EAN}", "871685900000000028"]',
    f'"{EAN}" in [data.ean]',
    f'[data.ean] == ["{EAN}"]',
    f'{{"k": data.ean}} == {{"k": "{EAN}"}}',
    f'{{"k": data.ean}}.k == "{EAN}"',
    f'data["ean"] == "{EAN}"',
    f'data["e" + "an"] == "{EAN}"',
    f'dyn(data).ean == "{EAN}"',
    f'dyn(data)["ean"] == "{EAN}"',
    f'(true ? data : {{}}).ean == "{EAN}"',
    f'(data.score > 2.0 ? "" : data.ean) == "{EAN}"',
    f'data == {{"ean": "{EAN}"}}',
    f'data != {{"ean": "{EAN}"}}',
    '"ean" in data',
    "size(data) == 7",
    f'data.exists(k, data[k] == "{EAN}")',
    f'data.map(k, k).exists(k, data[k] == "{EAN}")',
    f'data.filter(k, k == "ean").size() == 1 && data.all(k, data[k] != "{EAN}")',
    f'[data.ean].exists(x, x == "{EAN}")',
    f'[data].exists(d, d.ean == "{EAN}")',
    f'data.period.start.size() > 0 && [1].exists(x, data.ean == "{EAN}")',
    f'[1, 2].map(o, data.ean).exists(v, v == "{EAN}")',
    f'data.ean + "" == "{EAN}"',
    f'string(data.ean) == "{EAN}"',
    "int(data.ean) > 871685900000000000",
    "double(data.ean) > 8.7e17",
    'timestamp(data.ean) > timestamp("2020-01-01T00:00:00Z")',
    f'data.ean == data.ean && data.ean == "{EAN}"',
    f'"{EAN}".matches(data.ean)',
    f'"{EAN}".startsWith(data.ean)',
    'postcode4(data.ean) == "8716"',
    'data.score >= 0.8 || data.address.contains("Dorpsstraat")',
    'has(data.ean) && data.ean.matches("^87168")',
    f'{{"{EAN}": true}}[data.ean]',
    f'data.ean in {{"{EAN}": true}}',
    f'has({{"k": data.ean}}.k) && {{"k": data.ean}}.k == "{EAN}"',
    'data.ean.exists(c, c == "8")',
    f'data.ean == "{EAN}" ? true : false',
    f'[data.period, data.ean].exists(v, v == "{EAN}")',
]


@pytest.mark.parametrize("condition", EVASIONS)
def test_every_evasion_is_refused_with_line_and_fix(condition):
    errors = errors_of(condition)
    assert any("condition reads" in e and "would reveal the value" in e for e in errors), errors
    assert all("(fix: " in e for e in errors)


def test_personal_fields_that_are_not_identifiers_are_refused_too():
    fields = MappingProxyType(
        {
            "nickname": FieldInfo("nickname", "string", None, None, True),
            "score": FieldInfo("score", "number", None, None, False),
        }
    )
    [finding] = check_fields(parse('data.nickname == "Bob"'), 'data.nickname == "Bob"', fields)
    assert "personal data" in finding.message
    assert check_fields(parse("has(data.nickname)"), "has(data.nickname)", fields) == []


NESTED = MappingProxyType(
    {
        "owner": FieldInfo("owner", "object", None, None, False),
        "owner.kvk": FieldInfo("owner.kvk", "string", None, "kvk", True),
        "owner.employees": FieldInfo("owner.employees", "integer", None, None, False),
        "municipality": FieldInfo("municipality", "string", None, None, False),
    }
)


@pytest.mark.parametrize(
    "condition",
    [
        'data.owner.kvk == "12345678"',
        'data["owner"]["kvk"] == "12345678"',
        'data["owner"].kvk.startsWith("1")',
        'data.owner == {"kvk": "12345678", "employees": 3}',
        'data.owner.exists(k, data.owner[k] == "12345678")',
        'data.owner.all(k, k != "kvk") || size(data.owner) == 1',
        'dyn(data.owner).kvk == "12345678"',
        '"12345678" in [data.owner.kvk]',
    ],
)
def test_a_nested_identifier_and_its_enclosing_object_are_refused(condition):
    findings = check_fields(parse(condition), condition, NESTED)
    assert any("owner.kvk" in f.message and "identifier (kvk)" in f.message for f in findings)


@pytest.mark.parametrize(
    "condition",
    [
        "data.owner.employees > 10",
        "has(data.owner.kvk)",
        "has(data.owner) && !has(data.owner.kvk)",
        'data.municipality == "GM0361"',
        '[1, 2].exists(data, data == 2) && data.municipality != ""',
    ],
)
def test_members_beside_a_nested_identifier_stay_readable(condition):
    assert check_fields(parse(condition), condition, NESTED) == []


@pytest.mark.parametrize(
    "condition",
    [
        "has(data.ean)",
        "!has(data.ean) || data.score >= 0.9",
        'postcode4(data.address) == "1811"',
        'postcode4(data.address) in ["1811", "1812"]',
        'postcode4(data.address).startsWith("18")',
        "has(data.period.start)",
        CONDITION,
        'data.pattern == "cycle_12_12" && data.kwh_observed > 2.0 * data.kwh_expected',
        'timestamp(data.period.start + "T00:00:00Z") >= timestamp("2026-01-01T00:00:00Z")',
        'data.period.start >= "2026-01-01"',
        # a comprehension variable named like the data variable hides it
        '["a"].exists(data, data == "a")',
    ],
)
def test_allowed_forms_and_ordinary_fields_pass(condition):
    assert errors_of(condition) == []


def test_the_allowed_forms_are_the_documented_ones_and_evaluate():
    assert ALLOWED_FORMS == ("has(data.<field>)", "postcode4(data.<address or postcode field>)")
    received = signal(anomaly())  # address "1811 ab 12-a", canonical "1811AB 12A"
    activation = {"data": received.data, "source": "liander", "type": received.type, "time": ""}
    compiled = compile_condition(
        'has(data.ean) && postcode4(data.address) == "1811"', variables=CONDITION_VARIABLES
    )
    assert compiled(activation) is True
    other = compile_condition('postcode4(data.address) == "1812"', variables=CONDITION_VARIABLES)
    assert other(activation) is False


def test_postcode4_on_a_waste_postcode_field_is_allowed_but_not_on_a_non_location_field():
    assert errors_of('postcode4(data.postcode) == "1811"', "waste.drug_waste_dumping.v1") == []
    errors = errors_of('postcode4(data.municipality) == "1811"')
    assert any("postcode4() applies to address and postcode fields" in e for e in errors)


def test_one_error_per_finding_for_a_rule_with_several_types_naming_them():
    errors = errors_of(
        f'data.ean == "{EAN}"', "energy.consumption_anomaly.v1, energy.meter_tampering.v1"
    )
    findings = [e for e in errors if "condition reads" in e]
    assert len(findings) == 1, errors
    assert "energy.consumption_anomaly.v1, energy.meter_tampering.v1" in findings[0]
    assert EAN not in findings[0]  # the message never repeats the literal the author wrote


# Comparisons that can never hold: (condition, fragment of the message, fragment of the fix).
NEVER = [
    ('data.score >= "hoog"', "data.score is a number and the other side is a string", "0.8"),
    ('"hoog" <= data.score', "data.score is a number", "0.8"),
    ('data.score == "0.9"', "can never be true", "compare it with a number"),
    ('data.score != "0.9"', "is always true", "compare it with a number"),
    ("data.score == null", "never null", "has(data.score)"),
    ('data.pattern == "cycle_13_11"', "not one of the values of data.pattern", "cycle_12_12"),
    ('data.pattern in ["cycle_13_11", "cycle_19_5"]', "no listed value can match", "cycle_12_12"),
    ('data.municipality == "GM361"', "does not match the pattern", "GM0361"),
    ("data.period > 1", "which has no order", "members"),
    (
        'data.period.start > timestamp("2026-01-01T00:00:00Z")',
        "data.period.start is a date string, not a timestamp",
        '"YYYY-MM-DD"',
    ),
    ("data.kwh_observed == true", "number and the other side is a bool", "0.8"),
]


@pytest.mark.parametrize(("condition", "fragment", "fix"), NEVER)
def test_comparisons_that_can_never_hold_are_errors(condition, fragment, fix):
    errors = errors_of(condition)
    assert len(errors) == 1, errors
    message, hint = errors[0].split(" (fix: ")
    assert fragment in message
    assert fix in hint


@pytest.mark.parametrize(
    ("condition", "types", "fragment"),
    [
        ('"smell" in data.observations', "housing.observation.v1", "'smell' is not a value"),
        ("3 in data.observations", "housing.observation.v1", "items of data.observations"),
        (
            'data.found_at < timestamp("2026-01-01T00:00:00Z")',
            "waste.drug_waste_dumping.v1",
            "timestamp(data.found_at)",
        ),
        ('data.confirmed_on_site == "true"', "energy.illegal_connection.v1", "true or false"),
    ],
)
def test_more_never_true_comparisons_on_other_types(condition, types, fragment):
    errors = [e for e in errors_of(condition, types) if "condition `" in e]
    assert len(errors) == 1, errors
    assert fragment in errors[0]


@pytest.mark.parametrize(
    "condition",
    [
        "data.score >= 1",  # an int literal against a number field
        "data.score in [0.9, 1]",
        'data.pattern == "other" || data.pattern != "cycle_18_6"',
        'data.municipality in ["GM0361", "GM0362"]',
        "data.kwh_observed > data.kwh_expected",
    ],
)
def test_comparisons_that_can_hold_are_not_reported(condition):
    assert errors_of(condition) == []


def test_postcode4_of_something_else_fails_without_naming_the_value():
    from services.core.errors import ConditionError, ConditionEvaluationError

    compiled = compile_condition('postcode4(data.x) == "1811"', variables=CONDITION_VARIABLES)
    with pytest.raises(ConditionEvaluationError) as caught:
        compiled({"data": {"x": "Dorpsstraat 12"}})
    assert "Dorpsstraat" not in str(caught.value)
    assert "not a canonical address or postcode" in str(caught.value)
    with pytest.raises(ConditionError, match="always fails"):
        compile_condition('postcode4("Dorpsstraat 12") == "1811"', variables=CONDITION_VARIABLES)
    with pytest.raises(ConditionError, match="postcode4"):
        compile_condition("postcode4(12) == 1811", variables=CONDITION_VARIABLES)
