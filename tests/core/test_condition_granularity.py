"""A condition reveals nothing finer than the rules to that recipient share (issue 11, F3).

The attack: two rules of the tips covenant to riec-nh, one delivering when
``data.received_at.startsWith("2026-09-02T00:4")`` and one on the negation. The messages show
the month only, yet ``covenant.rule`` places an anonymous tip in a 10-minute window. Every
test below that expects a refusal passed ``covenant check`` before.
"""

from __future__ import annotations

import pytest

from services.core.records import feed_message
from tests.core.builders import NOW, checked, keys, policy, signal
from tests.core.test_envelope_disclosure import TIP_COVENANT, tip

RULE = TIP_COVENANT[TIP_COVENANT.index("  - id: tip-facts") :]


def tips(*conditions: str | None, share: str | None = None, envelope: str | None = None) -> str:
    """The tips covenant with one rule per condition (ids tip-0, tip-1, ...) to riec-nh."""
    head = TIP_COVENANT[: TIP_COVENANT.index("  - id: tip-facts")]
    rules = []
    for n, condition in enumerate(conditions):
        rule = RULE.replace("id: tip-facts", f"id: tip-{n}")
        if share is not None:
            rule = rule.replace(
                'share: {category: keep, municipality: keep, received_at: "generalise:month"}',
                f"share: {share}",
            )
        extra = ""
        if condition is not None:
            extra += f"    when: '{condition}'\n"
        if envelope is not None:
            extra += f"    envelope: {envelope}\n"
        rules.append(rule.replace("    retention: P30D\n", "    retention: P30D\n" + extra))
    return head + "".join(rules)


def errors(text: str) -> list[str]:
    return [str(p) for p in checked(text).errors]


def test_the_reported_attack_is_refused_with_file_line_and_fix():
    text = tips(
        'data.received_at.startsWith("2026-09-02T00:4")',
        '!data.received_at.startsWith("2026-09-02T00:4")',
    )
    result = checked(text)
    assert not result.ok
    found = [p for p in result.errors if "received_at" in p.message]
    lines = [n for n, ln in enumerate(text.splitlines(), 1) if ln.strip().startswith("when:")]
    assert sorted({p.line for p in found}) == lines  # each rule, held to itself and the other
    for problem in found:
        assert "finer than rule" in problem.message and "generalise:month" in problem.message
        assert "month(data.received_at)" in problem.hint
        assert "docs/covenants.md#what-a-condition-may-read" in problem.hint


@pytest.mark.parametrize(
    "condition",
    [
        "timestamp(time).getHours() == 10",
        "timestamp(time).getSeconds() == 0",
        'time.startsWith("2026-09-02T00")',
        'hour(time) == "2026-09-02T02:00:00+02:00"',  # finer than the default day
        "timestamp(data.received_at).getMinutes() < 30",
        'day(data.received_at) == "2026-09-02"',  # finer than the month shared
        'week(data.received_at) == "2026-W36"',  # a week is no function of the month
        'data.channel == "phone"',  # not shared at all
        'data.received_at > "2026-09-02"',
        'day(time) == "2026-09-02"',  # the envelope time follows the month shared
    ],
)
def test_a_condition_finer_than_the_share_is_refused(condition: str):
    assert any("finer than rule 'tip-0'" in e for e in errors(tips(condition))), condition


@pytest.mark.parametrize("condition", ['dyn(data).channel == "phone"', "size(data) > 3"])
def test_reading_the_whole_of_data_is_refused(condition: str):
    assert any("condition reads" in e for e in errors(tips(condition))), condition


@pytest.mark.parametrize(
    "condition",
    [
        'month(data.received_at) == "2026-09"',
        'year(data.received_at) >= "2026"',
        'month(time) == "2026-09"',  # the envelope time follows the month shared
        'year(time) == "2026"',
        'data.category == "drug_lab" && data.municipality == "GM0361"',  # kept fields
        "has(data.channel)",  # presence
        'type == "residents.anonymous_tip.v1" && source == "meld-misdaad-anoniem"',
    ],
)
def test_a_condition_no_finer_than_the_share_is_accepted(condition: str):
    assert errors(tips(condition)) == [], condition


def test_by_default_the_time_may_be_read_to_the_day():
    kept = "{category: keep, municipality: keep, received_at: keep}"
    for condition in (
        'day(time) == "2026-09-02"',
        'week(time) == "2026-W36"',
        "size(data.received_at) > 0",
    ):
        assert errors(tips(condition, share=kept)) == [], condition
    assert any(
        "envelope time generalise:day" in e for e in errors(tips('hour(time) == "x"', share=kept))
    )


def test_the_envelope_time_bounds_how_time_may_be_read():
    month = "{time: generalise:month}"
    assert errors(tips('month(time) == "2026-09"', envelope=month)) == []
    assert any(
        "envelope time generalise:month" in e
        for e in errors(tips('day(time) == "x"', envelope=month))
    )
    assert errors(tips("timestamp(time).getHours() == 10", envelope="{time: keep}")) == []
    omitted = errors(tips('year(time) == "2026"', envelope="{time: omit}"))
    assert any("envelope time omit" in e for e in omitted)
    assert any(
        "omits from its messages" in e
        for e in errors(tips('source == "x"', envelope="{source: omit}"))
    )


def test_a_band_may_be_cut_only_at_its_boundaries():
    """``score`` is no tip field: use the anomaly schema through the builders' covenant."""
    from tests.core.builders import covenant_text

    def rule(condition: str, score: str) -> str:
        return covenant_text(
            f"""
  - id: anomaly
    article: "art. 4"
    purpose: signalering
    from: [liander]
    types: [energy.consumption_anomaly.v1]
    to: [riec-nh]
    when: '{condition}'
    share: {{municipality: keep, score: "{score}"}}
    retention: P90D
"""
        )

    for ok in ("data.score >= 0.9", "data.score < 0.85", "0.9 <= data.score", "0.8 > data.score"):
        assert [e for e in errors(rule(ok, "generalise:band:0.05")) if "finer" in e] == [], ok
    for bad in ("data.score >= 0.93", "data.score > 0.9", "data.score <= 0.9", "data.score == 0.9"):
        assert any(
            "finer than rule 'anomaly'" in e for e in errors(rule(bad, "generalise:band:0.05"))
        ), bad
    assert [e for e in errors(rule("data.score > 0.8312", "keep")) if "finer" in e] == []


def test_a_condition_is_held_to_every_rule_deciding_the_same_recipient():
    """A message under the second rule says the first rule's condition did not hold: so the
    first may read only what the second shares too."""
    text = tips(None, None)
    first, second = text.split("  - id: tip-1")
    first = first.replace(
        'share: {category: keep, municipality: keep, received_at: "generalise:month"}',
        "share: {category: keep, municipality: keep, received_at: keep}",
    ).replace(
        "    retention: P30D\n",
        "    retention: P30D\n    when: 'data.received_at < \"2026-09-02T00:45\"'\n",
    )
    found = errors(first + "  - id: tip-1" + second)
    assert any("tips@1/tip-1 decides the same source, type and recipient" in e for e in found), (
        found
    )


def test_the_oracle_no_longer_reaches_the_feed():
    """With the refused rules rewritten to the shared granularity, the rule id tells nothing
    finer than the message: both tips of one month are delivered under the same rule."""
    text = tips('month(data.received_at) == "2026-09"', '!(month(data.received_at) == "2026-09")')
    hub = policy(text, store=keys())
    rules = set()
    for minute in ("00:41:00", "00:55:00"):
        message = dict(tip())
        message["data"] = {**message["data"], "received_at": f"2026-09-02T{minute}Z"}  # type: ignore[dict-item]
        [decision] = hub.decide(signal(message), NOW)
        rules.add(feed_message(decision)["covenant"]["rule"])
    assert rules == {"tip-0"}
