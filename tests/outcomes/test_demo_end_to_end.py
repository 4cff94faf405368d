"""End to end on the demo: a location signalled by several partners is stacked into an alert
for the RIEC, cleared by the police weeks later (demo time), approved by the OM, and each
partner receives exactly what its rule allows about its own part — and nothing else.

The demo's traffic and outcomes are fed in time order, in batches, as the hub would see them
live: each batch through the stacking step (its alerts are published as the hub's own signals),
the router's batch step, and the outcomes step on the SQL store.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.core.identifiers import normalise
from services.database.engine import make_engine
from services.demo.generator import DemoTraffic, generate
from services.demo.keys import DemoSigner
from services.outcomes.store import SqlOutcomeStore
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from services.stacking.loop import alert_message
from tests.outcomes.helpers import make_hub
from tests.stacking.helpers import make_hub as make_stacking_hub
from tests.stacking.helpers import records as stacking_records

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# What each partner's return rule answers (covenants/drugslocaties-nh/2025.1.yaml, art. 10)
FINDING_RETURNS = {
    "liander": {"energy.consumption_anomaly.v1", "energy.meter_tampering.v1",
                "energy.illegal_connection.v1"},
    "pwn": {"water.abnormal_use.v1"},
    "woonwaard": {"housing.observation.v1"},
    "elan-wonen": {"housing.observation.v1"},
}  # fmt: skip
CLOSURE_RETURNS = {
    "woonwaard": {"housing.observation.v1"},
    "elan-wonen": {"housing.observation.v1"},
}


def _time(envelope: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(envelope["time"]))


class Run:
    """Everything the hub produced while the demo ran."""

    def __init__(self) -> None:
        self.returns: list[tuple[str, dict[str, Any]]] = []
        self.audit: list[dict[str, Any]] = []
        self.alerts: list[dict[str, Any]] = []
        self.routed: list[dict[str, Any]] = []


def run_demo(traffic: DemoTraffic, tmp_path: Path) -> Run:
    stacking = make_stacking_hub()
    step = stacking.step()
    store = SqlOutcomeStore(make_engine(f"sqlite:///{tmp_path / 'outcomes.db'}"))
    store.create_schema()
    hub = make_hub(store)
    sign = DemoSigner()
    out = Run()
    events = sorted(traffic.signals + traffic.outcomes, key=lambda e: (_time(e), e["id"]))
    for start in range(0, len(events), 250):
        batch = events[start : start + 250]
        now = max(_time(e) for e in batch) + timedelta(minutes=5)
        stacked = step.run(stacking_records(batch), now)
        alerts = []
        for alert in stacked.changes.alerts.values():
            message = alert_message(alert, stacking.config, stacking.pseudonymiser, sign)
            if message is not None:
                alerts.append(orjson.loads(message))
        out.alerts += alerts
        consumed = [Consumed(signals_topic("schakel"), 0, i, orjson.dumps(a))
                    for i, a in enumerate(alerts)]  # fmt: skip
        out.routed += route_batch(consumed, hub.registry, hub.policy, now).audit
        _, decided = hub.feed(batch + alerts, now=now)
        out.audit += decided.audit
        out.returns += [(i.recipient, orjson.loads(i.value)) for i in decided.feed]
    store.close()
    return out


def test_a_stacked_site_cleared_weeks_later_is_returned_to_each_partner_about_its_own_part(
    tmp_path: Path,
) -> None:
    traffic = generate(3000, seed=8, start=datetime(2026, 8, 1, tzinfo=UTC), outcomes=True)
    run = run_demo(traffic, tmp_path)
    by_id = {e["id"]: e for e in traffic.signals + traffic.outcomes}
    approvals = {
        o["data"]["outcome_signal_id"]: o["data"]["decision"]
        for o in traffic.outcomes
        if o["type"] == "prosecution.case_approval.v1"
    }
    findings = {
        normalise("address", o["data"]["address"]): o
        for o in traffic.outcomes
        if o["type"] == "police.location_finding.v1"
    }
    alerted = {
        normalise("address", a["data"]["address"]) for a in run.alerts if "address" in a["data"]
    }
    routed = {(r["signal_id"], r["recipient"], r["result"]) for r in run.routed}
    checked_sites = 0
    for site in traffic.planted:
        found = findings.get(site.address)
        if found is None or site.address not in alerted:
            continue
        # stacked into an alert the router delivered to the RIEC, weeks before the finding
        alert = next(a for a in run.alerts if a["data"].get("address") == site.address)
        assert (alert["id"], "riec-nh", "delivered") in routed
        assert _time(found) - _time(alert) >= timedelta(days=13)
        site_signals = [by_id[i] for i in site.signal_ids if i in by_id]
        partners = {s["source"] for s in site_signals}
        assert len({s["source"] for s in site_signals}) >= 2  # several partners
        answered: dict[str, set[str]] = defaultdict(set)
        for recipient, message in run.returns:
            if message["type"] == "police.location_finding.v1" and message["answers"][
                "signal_id"
            ] in set(site.signal_ids):
                answered[recipient].add(message["answers"]["signal_id"])
                assert by_id[message["answers"]["signal_id"]]["source"] == recipient
                assert set(message["data"]) <= {"finding", "dismantled", "meter_bypassed",
                                                "water_bypassed", "found_at"}  # fmt: skip
        expected: dict[str, set[str]] = defaultdict(set)
        if approvals.get(found["id"]) == "approved":
            for s in site_signals:
                if s["type"] in FINDING_RETURNS.get(s["source"], set()):
                    expected[s["source"]].add(s["id"])
        assert dict(answered) == dict(expected), site.id
        # every other partner that named the site: withheld, and audited as such
        told = set(expected)
        for partner in partners - told:
            records = [
                r for r in run.audit
                if r["signal_id"] == found["id"] and r["recipient"] == partner
            ]  # fmt: skip
            assert records and all(r["result"] == "withheld" for r in records), partner
        checked_sites += 1
    assert checked_sites >= 3, "the demo should clear several stacked sites"
    returned_partners = {recipient for recipient, _ in run.returns}
    assert {"liander", "pwn"} <= returned_partners
    assert not returned_partners & {"meld-misdaad-anoniem", "chemiehandel-nh", "lto-meldpunt",
                                    "schakel", "riec-nh"}  # fmt: skip


def test_closures_go_back_to_the_housing_corporation_that_signalled_the_dwelling(
    tmp_path: Path,
) -> None:
    traffic = generate(3000, seed=8, start=datetime(2026, 8, 1, tzinfo=UTC), outcomes=True)
    run = run_demo(traffic, tmp_path)
    by_id = {e["id"]: e for e in traffic.signals}
    closures = [o for o in traffic.outcomes if o["type"] == "municipality.closure_order.v1"]
    assert closures
    returned = [(r, m) for r, m in run.returns if m["type"] == "municipality.closure_order.v1"]
    assert returned  # seed 8 closes a dwelling a housing corporation had reported
    for recipient, message in returned:
        own = by_id[message["answers"]["signal_id"]]
        assert own["source"] == recipient and recipient in CLOSURE_RETURNS
        assert own["type"] in CLOSURE_RETURNS[recipient]
        assert set(message["data"]) <= {"measure", "ground", "closure_months", "decided_at"}
