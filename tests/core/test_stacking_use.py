"""The hub may stack a signal only under a rule that applies to it: in force, condition met.

Issue 11 item 6: a signal outside a stacking rule's region was still stacked, and its use was
audited under a rule whose condition had not been met.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.core.builders import ANOMALY_RULE, anomaly, covenant_text, policy, signal

STACK_ONLY = """\
- id: anomaly-stacking-alkmaar
  article: "art. 9"
  purpose: signalering
  from: [liander]
  types: [energy.consumption_anomaly.v1]
  when: data.municipality == "GM0361"
  retention: P90D
  stacking: true
- id: anomaly-stacking-high-score
  article: "art. 10"
  purpose: signalering
  from: [liander]
  types: [energy.consumption_anomaly.v1]
  when: data.score >= 0.95
  retention: P90D
  stacking: true
"""

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def test_a_signal_outside_the_rules_condition_is_not_stacked() -> None:
    compiled = policy(
        covenant_text(ANOMALY_RULE.replace("reidentify", "stacking: true\n  reidentify"))
    )
    inside = signal(anomaly(municipality="GM0361", score=0.93))
    outside = signal(anomaly(municipality="GM0363", score=0.93))  # Amsterdam: not RIEC NH
    low = signal(anomaly(municipality="GM0361", score=0.5))
    assert compiled.stacking_use(inside, NOW).rule is not None
    for refused in (outside, low):
        use = compiled.stacking_use(refused, NOW)
        assert use.rule is None and use.reason == "condition_not_met"
        # the routing decision agrees: the same condition withholds it from the recipient
        [decision] = compiled.decide(refused, NOW)
        assert decision.result == "withheld"


def test_the_use_cites_the_rule_whose_condition_was_met() -> None:
    compiled = policy(covenant_text(STACK_ONLY))
    alkmaar = compiled.stacking_use(signal(anomaly(municipality="GM0361", score=0.5)), NOW)
    assert alkmaar.rule is not None and alkmaar.rule.rule_id == "anomaly-stacking-alkmaar"
    elsewhere = compiled.stacking_use(signal(anomaly(municipality="GM0398", score=0.97)), NOW)
    assert elsewhere.rule is not None
    assert (elsewhere.rule.rule_id, elsewhere.rule.article) == (
        "anomaly-stacking-high-score",
        "art. 10",
    )
    neither = compiled.stacking_use(signal(anomaly(municipality="GM0398", score=0.5)), NOW)
    assert neither.rule is None and neither.reason == "condition_not_met"


def test_a_rule_out_of_force_or_without_stacking_allows_no_use() -> None:
    compiled = policy(covenant_text(STACK_ONLY))
    before = datetime(2024, 6, 1, tzinfo=UTC)  # the covenant starts on 2025-01-01
    use = compiled.stacking_use(signal(anomaly(municipality="GM0361")), before)
    assert use.rule is None and use.reason == "rule_not_in_force"
    plain = policy(covenant_text(ANOMALY_RULE))
    use = plain.stacking_use(signal(anomaly(municipality="GM0361")), NOW)
    assert use.rule is None and use.reason == "not_for_stacking"


def test_a_condition_that_cannot_be_evaluated_allows_no_use() -> None:
    rule = STACK_ONLY.replace('data.municipality == "GM0361"', 'data.pattern == "cycle_12_12"')
    compiled = policy(covenant_text(rule.split("- id: anomaly-stacking-high-score")[0]))
    use = compiled.stacking_use(signal(anomaly(municipality="GM0361")), NOW)  # no pattern
    assert use.rule is None and use.reason == "condition_not_met"
