"""The worker's pure step: only stacking-allowed signals are used, each use is audited, and
an alert is a signal the covenants route (to the RIEC, the location pseudonymised)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.audit.testing import MemoryAuditStore
from services.core.pipeline import process
from services.core.stacking.purpose import STACKING_USE
from services.demo.generator import generate
from services.demo.keys import DemoSigner
from services.router.topics import signals_topic
from services.stacking.batch import Record
from services.stacking.loop import alert_message
from tests.stacking.helpers import NOW, make_hub, records

TRAFFIC = generate(1500, seed=5, start=datetime(2026, 8, 1, tzinfo=UTC), days=60)


def test_each_use_is_audited_under_the_rule_that_allows_stacking() -> None:
    hub = make_hub()
    stacked = hub.step().run(records(TRAFFIC.signals), NOW)
    assert 0 < stacked.used < stacked.signals
    assert len(stacked.audit) == stacked.used
    for record in stacked.audit:
        assert record["action"] == "use" and record["recipient"] == STACKING_USE
        assert record["processing_activity"] == hub.config.purpose
        plans = hub.policy.stacking_plans[(record["origin"], record["object"])]
        assert record["covenant"]["rule"] in {plan.ref.rule_id for plan in plans}
        assert record["subjects"] and all(p.startswith("p") for p in record["subjects"].values())
    audit = MemoryAuditStore()
    assert audit.record(stacked.audit, []) == len(stacked.audit)
    assert audit.record(stacked.audit, []) == 0  # a replayed batch is audited once
    raw = orjson.dumps(stacked.audit).decode()
    for site in TRAFFIC.planted:
        assert site.address not in raw and site.ean not in raw


def test_signals_no_rule_allows_for_stacking_are_not_used() -> None:
    hub = make_hub()
    allowed = [e for e in TRAFFIC.signals if (e["source"], e["type"]) in hub.policy.stacking]
    others = [e for e in TRAFFIC.signals if (e["source"], e["type"]) not in hub.policy.stacking]
    assert others, "the demo mix has types no rule allows for stacking (sewer, area peaks)"
    stacked = hub.step().run(records(others), NOW)
    assert stacked.used == 0 and not stacked.changes.evidence
    before_2025 = datetime(2024, 1, 1, tzinfo=UTC)  # no covenant allowing it was in force
    assert hub.step().run(records(allowed[:50]), before_2025).used == 0


def test_bad_input_wrong_topics_and_bad_signatures_are_skipped() -> None:
    hub = make_hub()
    good = next(e for e in TRAFFIC.signals if (e["source"], e["type"]) in hub.policy.stacking)
    assert hub.step().run(records([good]), NOW).used == 1
    wrong_topic = Record(signals_topic("not-" + good["source"]), orjson.dumps(good))
    data = dict(good["data"], municipality="GM0363")  # changed after signing
    tampered = Record(signals_topic(good["source"]), orjson.dumps(dict(good, data=data)))
    bad = [Record(signals_topic("pwn"), b"{not json"), wrong_topic, tampered]
    stacked = hub.step().run(bad, NOW)
    assert stacked.signals == 3 and stacked.used == 0


def test_an_alert_is_routed_to_the_riec_with_the_location_pseudonymised() -> None:
    hub = make_hub()
    alerts = hub.step().run(records(TRAFFIC.signals), NOW).changes.alerts
    assert alerts
    planted = {hub.location(p.address): p for p in TRAFFIC.planted}
    for alert in alerts.values():
        message = alert_message(alert, hub.config, hub.pseudonymiser, DemoSigner())
        assert message is not None
        outcome = process(message, hub.registry, hub.policy, NOW, expected_source="schakel")
        assert outcome.rejection is None, outcome.rejection
        [decision] = [d for d in outcome.decisions if d.delivered]
        assert decision.recipient == "riec-nh"
        payload = decision.payload
        assert payload is not None
        assert payload["alert_id"] == alert.alert_id
        assert payload["address"].startswith("r")  # pseudonymised (re-identifiable)
        assert planted[alert.location].address not in orjson.dumps(payload).decode()
        assert payload["score"] == alert.score
        assert decision.subjects["address"] == alert.location


def test_a_signal_outside_the_stacking_rules_region_is_not_used() -> None:
    """Issue 11 item 6: the rule allowing stacking applies to RIEC NH municipalities only."""
    hub = make_hub()
    signer = DemoSigner()
    regional = {  # (source, type) whose every stacking rule is limited to a region
        key
        for key, plans in hub.policy.stacking_plans.items()
        if all(p.condition is not None and "regions." in p.condition.source for p in plans)
    }
    inside = [
        e
        for e in TRAFFIC.signals
        if (e["source"], e["type"]) in regional and hub.step().run(records([e]), NOW).used == 1
    ][:40]
    assert len(inside) == 40
    moved = []
    for envelope in inside:
        unsigned = {k: v for k, v in envelope.items() if k != "signature"}
        data = dict(unsigned["data"], municipality="GM0363")  # Amsterdam: RIEC Amsterdam-Amstelland
        moved.append(signer(dict(unsigned, data=data, id=f"{unsigned['id']}-ams")))
    stacked = hub.step().run(records(moved), NOW)
    assert stacked.signals == 40 and stacked.used == 0 and not stacked.audit
    assert stacked.skipped == {"condition_not_met": 40}
    # the router withholds them from the RIEC for the same reason
    for envelope in moved[:5]:
        outcome = process(orjson.dumps(envelope), hub.registry, hub.policy, NOW)
        assert outcome.rejection is None
        assert all(not (d.delivered and d.recipient == "riec-nh") for d in outcome.decisions)
