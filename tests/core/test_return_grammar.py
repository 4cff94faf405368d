"""The return grammar (``return_to``, ``match``, ``approval``): what `schakel covenant check`
accepts, what it refuses with file and line, and what the compiler makes of it."""

from __future__ import annotations

import textwrap
from datetime import timedelta

import pytest

from services.core.policy import ReturnPlan
from tests.core.builders import NOW, checked, policy, signal

HEAD = """\
covenant: terug
version: "1"
title: Test covenant with returns
legal_basis: ["AVG art. 6 lid 1 sub e", "AVG art. 10 jo. UAVG art. 33"]
dpia: {reference: "DPIA test", date: 2024-12-01}
purposes:
  signalering: Signaleren
  terugmelding: Terugmelden
valid: {from: 2025-01-01, until: 2027-12-31}
signatures: optional
parties:
  liander: {name: Liander, kind: energy, roles: [supplier, recipient]}
  pwn: {name: PWN, kind: water, roles: [supplier]}
  politie-nh: {name: Politie, kind: police, roles: [supplier, recipient]}
  om-nh: {name: OM, kind: prosecution, roles: [supplier, approver]}
  riec-nh: {name: RIEC, kind: riec, roles: [recipient]}
  campagne: {name: Campagne, kind: campaign, roles: [recipient], aggregate_only: {min_cell: 5}}
rules:
  - id: anomaly-to-riec
    article: "art. 4"
    purpose: signalering
    from: [liander]
    types: [energy.consumption_anomaly.v1]
    to: [riec-nh]
    share: {address: pseudonymise, score: keep}
    retention: P180D
"""

RETURN = """\
- id: finding-back
  article: "art. 10"
  purpose: terugmelding
  from: [politie-nh]
  types: [police.location_finding.v1]
  return_to: [liander]
  match: {within: P365D, types: [energy.consumption_anomaly.v1]}
  approval: om-nh
  share: {finding: keep, dismantled: keep, found_at: "generalise:day"}
  retention: P730D
"""


def covenant(rule: str = RETURN) -> str:
    return HEAD + textwrap.indent(rule, "  ")


def test_a_return_rule_checks_clean_and_compiles_to_plans():
    result = checked(covenant())
    assert result.ok and not result.problems, [str(p) for p in result.problems]
    compiled = policy(covenant())
    [plan] = compiled.return_plans[("politie-nh", "police.location_finding.v1")]
    assert isinstance(plan, ReturnPlan)
    assert plan.recipient == "liander"
    assert plan.within == timedelta(days=365)
    assert plan.match_types == frozenset({"energy.consumption_anomaly.v1"})
    assert plan.approval == "om-nh"
    assert plan.ref.rule_id == "finding-back" and plan.ref.article == "art. 10"
    assert [s.dotted for s in plan.steps] == ["finding", "dismantled", "found_at"]
    # the router leaves the outcome (no `to` rule routes it) and the approvals to the worker
    assert compiled.hub_only == {
        ("politie-nh", "police.location_finding.v1"),
        ("om-nh", "prosecution.case_approval.v1"),
    }


def _finding() -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": "politie-1",
        "source": "politie-nh",
        "type": "police.location_finding.v1",
        "time": "2026-11-20T10:00:00Z",
        "data": {
            "address": "1811 AB 12",
            "municipality": "GM0361",
            "finding": "cannabis_grow",
            "found_at": "2026-11-20T10:00:00Z",
            "dismantled": True,
        },
    }


def test_the_router_records_nothing_for_an_outcome_only_the_worker_decides():
    compiled = policy(covenant())
    assert compiled.decide(signal(_finding()), NOW) == []
    # without the return rule the same outcome is uncovered: withheld, audited by the router
    bare = policy(HEAD)
    [decision] = bare.decide(signal(_finding()), NOW)
    assert decision.result == "withheld" and decision.recipient == "-"
    assert "no covenant rule allows" in (decision.reason or "")


REFUSED = [
    ("  to: [riec-nh]\n", "not both"),
    ("  match: {within: P365D}\n", None),  # replaced below: no match at all
    ("  types: [energy.consumption_anomaly.v1]\n", "not an outcome type"),
    ("  return_to: [pwn]\n", "must be a supplier and a recipient"),
    ("  return_to: [campagne]\n", "aggregates only"),
    ("  return_to: [nobody]\n", "unknown partner 'nobody'"),
    ("  share: {address: keep, finding: keep}\n", "never carries the outcome's identifiers"),
    ("  share: {bag: pseudonymise, finding: keep}\n", "never carries the outcome's identifiers"),
    ("  reidentify: on-request\n", "nothing to re-identify"),
    ("  stacking: true\n", "not indicators to stack"),
    ("  match: {within: P365D, types: [energy.nonsense.v1]}\n", "unknown signal type"),
    ("  match: {within: P365D, types: [police.nothing_found.v1]}\n", "is an outcome or approval"),
    ("  approval: riec-nh\n", "must be an approver that also supplies"),
    ("  approval: nobody\n", "unknown approver"),
]


def _mutate(line: str) -> str:
    key = line.strip().split(":", 1)[0]
    kept = [ln for ln in RETURN.splitlines(keepends=True) if not ln.startswith(f"  {key}:")]
    return "".join(kept[:-1]) + line + kept[-1]


@pytest.mark.parametrize(("line", "message"), REFUSED)
def test_the_checker_refuses_an_unsafe_return_rule_with_file_and_line(line, message):
    if message is None:
        rule = "".join(ln for ln in RETURN.splitlines(keepends=True) if "match:" not in ln)
        message = "`return_to` needs `match`"
    else:
        rule = _mutate(line)
    result = checked(covenant(rule))
    errors = [p for p in result.errors if message in p.message]
    assert errors, [str(p) for p in result.problems]
    assert all(p.file == "covenant-0.yaml" and p.line > 25 for p in errors)
    assert not result.ok


def test_match_and_approval_need_return_to():
    rule = textwrap.dedent(
        """\
        - id: stray
          article: "art. 11"
          purpose: terugmelding
          from: [politie-nh]
          types: [police.location_finding.v1]
          to: [riec-nh]
          match: {within: P30D}
          share: {finding: keep}
          retention: P30D
        """
    )
    result = checked(covenant(rule))
    assert any("belong to a rule with `return_to`" in p.message for p in result.errors)


def test_two_return_rules_that_disagree_on_the_same_recipient_are_an_error():
    other = RETURN.replace("finding-back", "finding-back-2").replace(
        'found_at: "generalise:day"', 'found_at: "generalise:month"'
    )
    result = checked(covenant(RETURN + other))
    assert any("both return police.location_finding.v1" in p.message for p in result.errors)
