"""Returns decided by the outcomes step, on the shipped covenants: who is told what, when, and
what is withheld and audited — against the in-memory store and the SQL store alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from services.database.engine import make_engine
from services.outcomes.store import SqlOutcomeStore
from services.outcomes.testing import MemoryOutcomeStore
from tests.outcomes.helpers import (
    ADDRESS,
    BAG,
    CANONICAL,
    EAN,
    NOW,
    Hub,
    anomaly,
    approval,
    envelope,
    finding,
    make_hub,
    messages,
    nothing_found,
    observation,
    records,
    water,
)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def hub(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Hub]:
    if request.param == "memory":
        yield make_hub(MemoryOutcomeStore())
        return
    url = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else f"sqlite:///{tmp_path / 'outcomes.db'}"
    )
    store = SqlOutcomeStore(make_engine(url))
    store.create_schema()
    yield make_hub(store)
    store.close()


def by_recipient(audit: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(r["recipient"]): r for r in audit}


def test_each_partner_is_told_about_its_own_signal_only_after_the_om_approved(hub: Hub):
    a, o, w = anomaly(), observation(), water()
    hub.feed([a, o, w])
    f = finding()
    extracted, held = hub.feed([f])
    assert len(extracted.entries.outcomes) == 1
    assert (held.delivered, held.held, held.withheld) == (0, 3, 0)
    assert not held.feed
    for record in held.audit:
        assert record["result"] == "withheld"
        assert "held: awaiting the per-case approval of om-nh" in str(record["reason"])
    approved_by = approval(f)
    _, approved = hub.feed([approved_by])
    got = messages(approved)
    assert set(got) == {"liander", "woonwaard", "pwn"}
    [grid] = got["liander"]
    assert grid["answers"] == {"signal_id": a["id"], "type": "energy.consumption_anomaly.v1"}
    assert grid["data"] == {
        "finding": "cannabis_grow",
        "dismantled": True,
        "meter_bypassed": True,
        "found_at": "2026-11-20",
    }
    assert grid["covenant"]["rule"] == "finding-back-to-grid-operator"
    assert grid["covenant"]["article"] == "art. 10 lid 2"
    assert grid["covenant"]["purpose"] == "terugmelding"
    assert grid["type"] == "police.location_finding.v1" and grid["source"] == "politie-nh"
    assert grid["time"] == "2026-11-20" and grid["retention_days"] == 730
    [housing] = got["woonwaard"]
    assert housing["answers"]["signal_id"] == o["id"]
    assert housing["data"] == {"finding": "cannabis_grow", "dismantled": True,
                               "found_at": "2026-11-20"}  # fmt: skip
    assert got["pwn"][0]["answers"]["signal_id"] == w["id"]
    records = by_recipient(approved.audit)
    assert records["liander"]["result"] == "delivered"
    assert records["liander"]["approval"] == {
        "by": "om-nh",
        "decision": "approved",
        "signal_id": approved_by["id"],
    }
    assert records["liander"]["answers"] == {
        "source": "liander",
        "signal_id": a["id"],
        "type": "energy.consumption_anomaly.v1",
    }
    assert records["liander"]["fields"]["answers.signal_id"] == "own-reference"


def test_a_refusal_by_the_om_withholds_every_return_naming_its_approval(hub: Hub):
    hub.feed([anomaly(), observation()])
    f = finding()
    hub.feed([f])
    refusal = approval(f, decision="refused")
    _, decided = hub.feed([refusal])
    assert not decided.feed
    assert decided.withheld == 2
    for record in decided.audit:
        assert record["result"] == "withheld"
        assert f"om-nh refused this outcome's returns (approval signal {refusal['id']})" in str(
            record["reason"]
        )
    # the first decision counts: a later approval does not undo the refusal
    _, later = hub.feed([approval(f)])
    assert not later.feed


def test_an_approval_that_arrives_before_its_outcome_counts_when_the_outcome_comes(hub: Hub):
    hub.feed([anomaly()])
    f = finding()
    hub.feed([approval(f)])
    _, decided = hub.feed([f])
    assert [m["answers"]["type"] for m in messages(decided)["liander"]] == [
        "energy.consumption_anomaly.v1"
    ]


def test_nothing_found_goes_back_without_approval_generalised_to_the_month(hub: Hub):
    a = anomaly(days_ago=30)
    hub.feed([a])
    _, decided = hub.feed([nothing_found(days_ago=3)])
    [message] = messages(decided)["liander"]
    assert message["data"] == {"check_kind": "police_visit", "checked_at": "2026-11"}
    assert message["answers"]["signal_id"] == a["id"]
    assert message["covenant"]["rule"] == "nothing-found-back"


def test_partners_no_return_rule_names_are_withheld_and_audited(hub: Hub):
    tip = envelope(
        "meld-misdaad-anoniem",
        "residents.anonymous_tip.v1",
        {
            "category": "cannabis_cultivation",
            "address": ADDRESS,
            "municipality": "GM0361",
            "received_at": "2026-10-01T20:00:00Z",
            "channel": "web_form",
        },
        days_ago=52,
    )
    dumping = envelope(
        "hvc",
        "waste.drug_waste_dumping.v1",
        {
            "address": ADDRESS,
            "municipality": "GM0361",
            "waste_kind": "barrels",
            "found_at": "2026-10-01T08:00:00Z",
        },
        days_ago=52,
    )
    hub.feed([tip, dumping])
    f = finding()
    hub.feed([f])
    _, decided = hub.feed([approval(f)])
    assert not decided.feed  # the tip line and the waste company are never told
    records = by_recipient(decided.audit)
    for partner, kind in (("meld-misdaad-anoniem", "residents"), ("hvc", "waste")):
        record = records[partner]
        assert record["result"] == "withheld"
        assert record["reason"] == (
            f"no covenant rule allows returning police.location_finding.v1 from politie-nh "
            f"to {partner}"
        ), kind
        assert record["covenant"] is None
        assert record["subjects"]  # findable by the location's pseudonym (AVG art. 15)


def test_a_signal_the_rule_does_not_answer_is_withheld_saying_why(hub: Hub):
    hub.feed([anomaly(days_ago=170)])
    later = NOW + timedelta(days=40)  # the check comes 208 days after the signal, and
    _, decided = hub.feed([nothing_found(days_ago=-38)], now=later)  # the rule reaches 180
    assert not decided.feed
    [record] = decided.audit
    assert record["result"] == "withheld" and record["recipient"] == "liander"
    assert "does not answer this signal" in str(record["reason"])


def test_a_signal_after_the_outcome_is_not_answered_by_it(hub: Hub):
    _, first = hub.feed([nothing_found(days_ago=10)])
    assert not first.audit[1:]  # only the matching record
    _, later = hub.feed([anomaly(days_ago=5)])
    assert not later.audit and not later.feed


def test_a_signal_that_arrives_after_its_outcome_is_not_answered_however_backdated(hub: Hub):
    """A probe: the check is in, then a partner sends a signal about the address backdated
    to before it. "Sent before the outcome" is the hub's receipt order, never the envelope
    ``time`` the partner writes — else any partner learns the police's results for any
    address it names. (This test used to assert the opposite: that hole.)"""
    hub.feed([nothing_found(days_ago=2)])
    probe = anomaly(days_ago=20)  # claims to be 20 days old; the hub receives it now
    _, decided = hub.feed([probe])
    assert not decided.feed and not decided.audit
    assert hub.store.later_outcomes([], timedelta(days=400)) == []


def test_a_backdated_probe_after_an_approval_learns_nothing_and_needs_no_new_approval(hub: Hub):
    """The approved finding answers the real signal; a week later the same partner probes
    the address backdated 30 days: no return, no record saying delivered."""
    real = anomaly(days_ago=60)
    hub.feed([real])
    f = finding(days_ago=2)
    hub.feed([f])
    _, approved = hub.feed([approval(f)])
    assert [m["answers"]["signal_id"] for m in messages(approved)["liander"]] == [real["id"]]
    probe = anomaly(days_ago=30, signal_id="liander-probe-1")
    _, later = hub.feed([probe], now=NOW + timedelta(days=7))
    assert not later.feed
    assert not [r for r in later.audit if r["result"] == "delivered"]


def test_a_signal_received_before_its_outcome_but_read_after_it_is_answered(hub: Hub):
    """The worker reads topics in any order: what counts is when the hub received each."""
    early = anomaly(days_ago=20)
    check = nothing_found(days_ago=2)
    signal_record, outcome_record = records([early, check])  # received in this order
    step = hub.step
    for record in (outcome_record, signal_record):  # read the other way round
        extracted = step.extract([record], NOW)
        hub.store.write(extracted.entries)
        decided = step.decide(extracted.entries, hub.store, NOW)
    [message] = messages(decided)["liander"]
    assert message["answers"]["signal_id"] == early["id"]


def test_a_signal_no_rule_delivered_is_never_answered_and_the_withholding_is_audited(hub: Hub):
    """A score below every rule's threshold reaches nobody: it took part in no exchange, so
    an outcome at its address is not returned to it (even received before the outcome)."""
    weak = anomaly(days_ago=20, score=0.05)
    extracted, _ = hub.feed([weak])
    [entry] = extracted.entries.signals
    assert entry.rules == ()  # indexed for the indicators, delivered to no one
    _, decided = hub.feed([nothing_found(days_ago=2)])
    assert not decided.feed
    [record] = [r for r in decided.audit if r.get("answers")]
    assert record["result"] == "withheld" and record["recipient"] == "liander"
    assert f"no covenant rule delivered signal {weak['id']} to any recipient" in str(
        record["reason"]
    )


def test_an_approval_covers_only_the_signals_received_before_it(hub: Hub):
    """The OM approves the finding's returns before the finding reaches the hub; a signal
    the hub receives after that approval was never put to the OM: held until a new one."""
    before = anomaly(days_ago=60)
    hub.feed([before])
    f = finding(days_ago=2)
    first = approval(f)
    hub.feed([first])
    after = anomaly(days_ago=50, ean="871685900000000028")  # received after the approval
    hub.feed([after])
    _, decided = hub.feed([f])
    assert [m["answers"]["signal_id"] for m in messages(decided)["liander"]] == [before["id"]]
    held = [r for r in decided.audit if r.get("answers", {}).get("signal_id") == after["id"]]
    assert [r["result"] for r in held] == ["withheld"]
    assert "held: awaiting the per-case approval of om-nh" in str(held[0]["reason"])
    again = approval(f)
    _, second = hub.feed([again])
    by_signal = {r["answers"]["signal_id"]: r for r in second.audit if r["result"] == "delivered"}
    assert set(by_signal) == {before["id"], after["id"]}  # the first is a replay (same id)
    assert by_signal[after["id"]]["approval"]["signal_id"] == again["id"]
    assert by_signal[before["id"]]["approval"]["signal_id"] == first["id"]


def test_the_location_is_matched_by_any_premises_identifier(hub: Hub):
    """A signal naming only the EAN and one naming only the BAG id are answered by an outcome
    naming all three, each spelt its own way."""
    only_ean = anomaly(address="1012 AB 1", ean="8716 8590 0000 0000 11")
    only_bag = observation(address="9999ZZ 1")
    hub.feed([only_ean, only_bag])
    f = finding(address="1811AB12-a", bag=BAG, ean=EAN)
    hub.feed([f, approval(f)])
    _, decided = hub.feed([approval(f)])
    got = {m["answers"]["signal_id"] for ms in messages(decided).values() for m in ms}
    assert got == {only_ean["id"], only_bag["id"]}


def test_replays_decide_the_same_pairs_under_the_same_ids(hub: Hub):
    batch = [anomaly(), observation(), water()]
    f = finding()
    hub.feed(batch)
    hub.feed([f])
    _, first = hub.feed([approval(f)])
    hub.feed(batch)  # a crash before the offsets were committed: the same records again
    _, again_outcome = hub.feed([f])
    _, again = hub.feed([approval(f)])
    assert [r["record_id"] for r in again.audit] == [r["record_id"] for r in first.audit]
    assert [i.exchange_id for i in again.feed] == [i.exchange_id for i in first.feed]
    assert [i.value for i in again.feed] == [i.value for i in first.feed]
    assert {r["record_id"] for r in again_outcome.audit} >= {
        r["record_id"] for r in first.audit if r["result"] == "delivered"
    }


def test_no_audit_record_or_message_holds_a_raw_identifier(hub: Hub):
    raws = {ADDRESS, CANONICAL, BAG, EAN, "1811AB", "1811 ab"}
    f = finding(bag=BAG, ean=EAN)
    outputs: list[bytes] = []
    for batch in ([anomaly(), observation(), water()], [f], [approval(f)]):
        extracted, decided = hub.feed(batch)
        outputs += [orjson.dumps(r) for r in extracted.audit + decided.audit]
        outputs += [i.value + i.key for i in decided.feed]
    assert outputs
    for blob in outputs:
        for raw in raws:
            assert raw.encode() not in blob, raw


def test_the_matching_of_an_outcome_is_audited_once_under_its_rule(hub: Hub):
    f = finding()
    extracted, _ = hub.feed([f])
    [record] = extracted.audit
    assert record["action"] == "use" and record["result"] == "matched"
    assert record["recipient"] == "hub:outcomes" and record["origin"] == "politie-nh"
    assert record["covenant"]["rule"] == "finding-back-to-grid-operator"
    assert record["subjects"] == {"address": hub.location()}
    extracted_again, _ = hub.feed([f])
    assert extracted_again.audit[0]["record_id"] == record["record_id"]


def test_entries_keep_no_longer_than_the_rules_allow(hub: Hub):
    extracted, _ = hub.feed([anomaly(days_ago=10), finding(days_ago=1)])
    [entry] = extracted.entries.signals
    assert entry.keep_until == entry.time + timedelta(days=180)  # energy-anomaly-to-riec
    [outcome] = extracted.entries.outcomes
    assert outcome.keep_until == outcome.time + timedelta(days=730)
    assert "address" not in outcome.data and "bag" not in outcome.data
    purged = hub.store.purge(NOW + timedelta(days=200))
    assert (purged.signals, purged.outcomes) == (1, 0)
