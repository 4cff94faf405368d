"""Aggregate-only recipients: a covenant can say a party receives aggregates (with a minimum
cell size) and never a record per signal; the checker refuses a per-signal rule to it, and the
policy withholds per-signal delivery to it even if such a rule got past the checker."""

from __future__ import annotations

import textwrap

import orjson
import pytest

from services.config import ROOT
from services.core.covenant.checker import CheckResult
from services.core.covenant.compiler import compile_policy
from services.core.covenant.loader import parse_covenant
from services.core.pseudonyms import Pseudonymiser
from services.core.records import feed_message
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.core.builders import NOW, REGISTRY, checked, keys, policy, signal

SHIPPED = ROOT / "covenants" / "nh-drugsalert" / "2025.1.yaml"

COVENANT = textwrap.dedent(
    """\
    covenant: tips
    version: "1"
    title: Tips
    legal_basis: ["AVG art. 6 lid 1 sub e"]
    purposes: {signalering: Signaleren, meldingsbereidheid: Campagnes}
    valid: {from: 2025-01-01, until: 2027-12-31}
    signatures: optional
    parties:
      meld-misdaad-anoniem: {name: MMA, kind: residents, roles: [supplier]}
      riec-nh: {name: RIEC NH, kind: riec, roles: [recipient]}
      campagneteam-nh:
        name: Campagneteam
        kind: campaign
        roles: [recipient]
        aggregate_only: {min_cell: 5}
    rules:
      - id: tip-to-riec
        article: "art. 5"
        purpose: signalering
        from: [meld-misdaad-anoniem]
        types: [residents.anonymous_tip.v1]
        to: [riec-nh]
        share: {category: keep, municipality: keep}
        retention: P30D
    aggregates:
      - id: coverage-to-campaign-team
        article: "art. 6"
        purpose: meldingsbereidheid
        report: coverage
        to: [campagneteam-nh]
        min_cell: 5
        retention: P730D
    """
)

OLD_RULE = """\
  - id: tip-facts-to-campaign-team
    article: "art. 6"
    purpose: meldingsbereidheid
    from: [meld-misdaad-anoniem]
    types: [residents.anonymous_tip.v1]
    to: [campagneteam-nh]
    share:
      category: keep
      municipality: keep
      channel: keep
      received_at: generalise:month
    retention: P730D
"""


def tip(signal_id: str = "mma-000001") -> dict[str, object]:
    return {
        "specversion": "1.0",
        "id": signal_id,
        "source": "meld-misdaad-anoniem",
        "type": "residents.anonymous_tip.v1",
        "time": "2026-11-02T00:50:20Z",
        "data": {
            "category": "drug_lab",
            "municipality": "GM0361",
            "received_at": "2026-11-02T00:40:00Z",
            "channel": "phone",
        },
    }


def with_old_rule(text: str, rule: str = OLD_RULE) -> str:
    """``text`` with ``rule`` appended to its rules (before its ``aggregates``)."""
    head, tail = text.split("aggregates:\n", 1)
    return head + rule + "aggregates:\n" + tail


def line_of(text: str, needle: str, after: str) -> int:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i in range(start, len(lines)) if needle in lines[i]) + 1


def test_the_shipped_covenant_gives_the_campaign_team_aggregates_only():
    [loaded] = parse_covenant(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED)).covenants
    cov = loaded.covenant
    party = cov.parties["campagneteam-nh"]
    assert party.aggregate_only is not None and party.aggregate_only.min_cell >= 5
    assert not [r.id for r in cov.rules if "campagneteam-nh" in r.to]
    [aggregate] = [a for a in cov.aggregates if "campagneteam-nh" in a.to]
    assert (aggregate.report, aggregate.min_cell) == ("coverage", 5)


def test_the_checker_refuses_the_old_per_tip_rule_with_file_and_line():
    text = with_old_rule(SHIPPED.read_text(encoding="utf-8"))
    result = checked(text)
    [error] = [p for p in result.errors if "aggregates only" in p.message]
    assert error.file == "covenant-0.yaml"
    assert error.line == line_of(text, "to: [campagneteam-nh]", "tip-facts-to-campaign-team")
    assert "tip-facts-to-campaign-team" in error.message
    assert "`aggregates` entry" in error.hint


def test_a_per_signal_rule_in_another_covenant_is_refused_too():
    other = (
        COVENANT.replace("covenant: tips", "covenant: other")
        .replace(
            "        aggregate_only: {min_cell: 5}\n",
            "",
        )
        .split("aggregates:\n", 1)[0]
    )
    other = other.replace("to: [riec-nh]", "to: [riec-nh, campagneteam-nh]")
    result = checked(COVENANT, other)
    [error] = [p for p in result.errors if "aggregates only" in p.message]
    assert error.file == "covenant-1.yaml"
    assert "declared in tips@1" in error.message


@pytest.mark.parametrize(
    ("change", "message", "key"),
    [
        (("min_cell: 5\n    retention", "min_cell: 3\n    retention"), "below 5", "min_cell: 3"),
        (
            ("aggregate_only: {min_cell: 5}", "aggregate_only: {min_cell: 10}"),
            "below the 10 that 'campagneteam-nh'",
            "min_cell: 5",
        ),
        (("- id: coverage-to-campaign-team", "- id: tip-to-riec"), "used twice", "id: tip-to-riec"),
        (
            ("purpose: meldingsbereidheid\n    report", "purpose: campagnes\n    report"),
            "not one of the covenant's purposes",
            "purpose: campagnes",
        ),
        (
            ("to: [campagneteam-nh]", "to: [meld-misdaad-anoniem]"),
            "is not a recipient party",
            "to: [meld-misdaad-anoniem]",
        ),
    ],
)
def test_bad_aggregates_entries_are_errors_with_their_line(change, message, key):
    text = COVENANT.replace(*change)
    assert text != COVENANT
    result = checked(text)
    [error] = [p for p in result.errors if message in p.message]
    assert error.line == line_of(text, key, "aggregates:")


def test_an_unknown_report_is_refused_with_its_line():
    text = COVENANT.replace("report: coverage", "report: tips-per-street")
    [error] = checked(text).errors
    assert "aggregates.0.report" in error.message and "'coverage'" in error.message
    assert error.line == line_of(text, "report: tips-per-street", "aggregates:")


def slipped_policy():
    """The policy of a covenant with the old per-tip rule, as if the checker had missed it."""
    result = checked(with_old_rule(COVENANT))
    assert not result.ok
    assert any(r.rule.id == "tip-facts-to-campaign-team" for r in result.rules)
    slipped = CheckResult(
        covenants=result.covenants,
        rules=result.rules,
        problems=[p for p in result.problems if not p.is_error],
    )
    return compile_policy(slipped, REGISTRY, Pseudonymiser(keys()))


def test_the_policy_never_delivers_per_signal_to_an_aggregate_only_recipient():
    decisions = {d.recipient: d for d in slipped_policy().decide(signal(tip()), NOW)}
    assert decisions["riec-nh"].delivered
    withheld = decisions["campagneteam-nh"]
    assert not withheld.delivered and withheld.payload is None
    assert withheld.reason is not None
    assert "campagneteam-nh receives aggregates only (cells of at least 5, tips@1)" in (
        withheld.reason
    )
    assert withheld.rule is not None and withheld.rule.rule_id == "tip-facts-to-campaign-team"
    with pytest.raises(ValueError, match="delivered"):
        feed_message(withheld)


def test_the_router_audits_the_withholding_and_writes_no_feed_message():
    values = [orjson.dumps(tip(f"mma-{n:06d}")) for n in range(5)]
    records = [
        Consumed(signals_topic("meld-misdaad-anoniem"), 0, i, v) for i, v in enumerate(values)
    ]
    routed = route_batch(records, REGISTRY, slipped_policy(), NOW)
    campaign = [a for a in routed.audit if a["recipient"] == "campagneteam-nh"]
    assert len(campaign) == 5
    assert all(a["result"] == "withheld" and "aggregates only" in a["reason"] for a in campaign)
    assert {e.recipient for e in routed.outbox} == {"riec-nh"}


def test_a_clean_covenant_compiles_and_delivers_to_the_others():
    [decision] = policy(COVENANT).decide(signal(tip()), NOW)
    assert decision.recipient == "riec-nh" and decision.delivered
