"""The demo's outcomes: realistic (most signals lead nowhere, planted sites cleared weeks later,
checks that find nothing), deterministic, valid, signed, and apart from the signals."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.config import Paths, load_policy
from services.core.identifiers import normalise
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.demo.generator import DemoTraffic, generate, stream, truth
from services.keys.testing import MemoryKeyStore

START = datetime(2026, 8, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def traffic() -> DemoTraffic:
    return generate(4500, seed=21, start=START, outcomes=True)


def test_signals_are_the_same_with_or_without_outcomes(traffic: DemoTraffic):
    plain = generate(4500, seed=21, start=START)
    assert plain.signals == traffic.signals
    assert plain.outcomes == [] and traffic.outcomes
    again = generate(4500, seed=21, start=START, outcomes=True)
    assert again.outcomes == traffic.outcomes  # deterministic


def test_most_signals_lead_nowhere(traffic: DemoTraffic):
    outcome_places = {
        normalise("address", o["data"]["address"])
        for o in traffic.outcomes
        if "address" in o["data"] and o["type"] != "environment.dumping_cleanup.v1"
    }
    with_place = [s for s in traffic.signals if "address" in s["data"]]
    followed = sum(
        1 for s in with_place if normalise("address", s["data"]["address"]) in outcome_places
    )
    assert with_place and followed / len(with_place) < 0.15


def test_planted_sites_are_cleared_weeks_later_and_decoys_checked(traffic: DemoTraffic):
    findings = {
        normalise("address", o["data"]["address"]): o
        for o in traffic.outcomes
        if o["type"] == "police.location_finding.v1"
    }
    cleared = [p for p in traffic.planted if p.address in findings]
    assert 0.5 <= len(cleared) / len(traffic.planted) <= 0.9
    for site in cleared:
        found = datetime.fromisoformat(findings[site.address]["time"])
        after = found - datetime.fromisoformat(site.last_seen)
        assert timedelta(days=13) <= after <= timedelta(days=57)
        assert findings[site.address]["data"]["finding"] in (
            "cannabis_grow" if site.kind == "cannabis" else "synthetic_lab",
            "drug_storage",
        )
    decoy_places = {d.address for d in traffic.decoys}
    negative = {
        normalise("address", o["data"]["address"])
        for o in traffic.outcomes
        if o["type"] == "police.nothing_found.v1"
    }
    assert negative & decoy_places
    assert not set(findings) & decoy_places  # a decoy is never a finding
    approvals = Counter(
        o["data"]["decision"]
        for o in traffic.outcomes
        if o["type"] == "prosecution.case_approval.v1"
    )
    assert approvals["approved"] > approvals["refused"]
    assert sum(approvals.values()) <= len(findings)


def test_every_outcome_is_accepted_by_the_shipped_covenants(traffic: DemoTraffic):
    paths = Paths.from_env({})
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()), today=START.date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    times = [datetime.fromisoformat(o["time"]) for o in traffic.outcomes]
    assert times == sorted(times)
    for envelope in traffic.outcomes:
        moment = datetime.fromisoformat(envelope["time"]) + timedelta(minutes=1)
        outcome = process(orjson.dumps(envelope), loaded.registry, loaded.policy, moment)
        assert outcome.rejection is None, (envelope["type"], outcome.rejection)
        assert envelope["signature"].startswith(f"ed25519:demo-{envelope['source']}:")
    kinds = Counter(o["type"] for o in traffic.outcomes)
    assert {"police.location_finding.v1", "police.nothing_found.v1",
            "prosecution.case_approval.v1", "energy.theft_claim.v1"} <= set(kinds)  # fmt: skip


def test_the_truth_names_what_each_outcome_is_about(traffic: DemoTraffic):
    document = truth(traffic)
    about = Counter(o["about"] for o in document["outcomes"])
    assert about["decoy"] > 0 and about["background"] > 0
    assert any(k.startswith("planted-") for k in about)
    assert len(document["outcomes"]) == len(traffic.outcomes)


def test_the_file_holds_the_outcomes_in_time_order_some_after_the_window():
    small = generate(1500, seed=3, start=START, days=60, outcomes=True)
    lines = [orjson.loads(line) for line in small.lines()]
    end = START + timedelta(days=60)
    assert any(datetime.fromisoformat(o["time"]) >= end for o in small.outcomes)
    assert len(lines) == len(small.signals) + len(small.outcomes)
    times = [datetime.fromisoformat(e["time"]) for e in lines]
    assert times == sorted(times)


def test_the_live_stream_merges_outcomes_at_their_own_time():
    pairs = list(itertools.islice(stream(5, START, signals_per_day=300, outcomes=True), 12_000))
    times = [datetime.fromisoformat(e["time"]) for _, e in pairs]
    assert times == sorted(times)
    types = Counter(e["type"] for _, e in pairs)
    assert types["police.location_finding.v1"] > 0 and types["police.nothing_found.v1"] > 0
    assert all(partner == e["source"] for partner, e in pairs)
