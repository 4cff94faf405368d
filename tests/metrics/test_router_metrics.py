"""RouterMetrics over a batch of real demo traffic routed by the real policy."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.metrics.labels import OTHER, safe, withheld_reason_of
from services.metrics.router import INVALID_TYPE, RouterMetrics
from services.metrics.testing import exposition, total, value
from tests.metrics.helpers import PUBLISHED_MS, identifiers, leaked, routed_batch

WALL = PUBLISHED_MS / 1000 + 2.0  # the batch is acknowledged 2 s after it was published


@pytest.fixture(scope="module")
def batch():
    return routed_batch()


def observed(batch, highwater=lambda tp: None) -> CollectorRegistry:
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry, wall=lambda: WALL)
    dead = [letter.value for letter in batch.routed.dead_letters]
    metrics.batch_done(batch.records, batch.routed.audit, dead, highwater)
    return registry


def test_counts_match_what_the_policy_decided(batch):
    registry = observed(batch)
    routed = batch.routed
    decisions = [r for r in routed.audit if r["result"] != "rejected"]
    assert total(registry, "schakel_decisions_total") == len(decisions)
    assert total(registry, "schakel_decisions_total", result="delivered") == routed.delivered
    assert total(registry, "schakel_withheld_total") == routed.withheld
    assert total(registry, "schakel_dead_letters_total") == len(routed.dead_letters) >= 3
    assert total(registry, "schakel_signals_in_total") == routed.signals
    assert value(registry, "schakel_router_batches_total") == 1


def test_per_partner_type_and_per_rule_labels(batch):
    registry = observed(batch)
    arrived = Counter((s["source"], s["type"]) for s in batch.signals)
    rejected = Counter(orjson.loads(d.value)["partner"] for d in batch.routed.dead_letters)
    for (partner, kind), count in arrived.items():
        got = value(registry, "schakel_signals_in_total", {"partner": partner, "type": kind})
        # a signal of a valid-looking partner/type can still be rejected (bad identifier)
        assert got is not None
        assert count - rejected[partner] <= got <= count
    invalid = total(registry, "schakel_signals_in_total", type=INVALID_TYPE)
    assert invalid == len(batch.routed.dead_letters)
    rules = Counter(
        (r["covenant"]["id"], r["covenant"]["rule"], r["recipient"])
        for r in batch.routed.audit
        if r["result"] == "delivered"
    )
    for (covenant, rule, recipient), count in rules.items():
        labels = {"covenant": covenant, "rule": rule, "recipient": recipient}
        assert (
            value(registry, "schakel_decisions_total", {**labels, "result": "delivered"}) == count
        )


def test_withheld_and_dead_letter_reasons_are_named(batch):
    registry = observed(batch)
    exposed = exposition(registry)
    reasons = {
        line.split('reason="')[1].split('"')[0]
        for line in exposed.splitlines()
        if line.startswith("schakel_withheld_total{")
    }
    assert reasons, "the demo traffic withholds something"
    assert reasons <= {"no_rule", "revoked", "not_yet_in_force", "expired"} | {
        "condition_error",
        "condition_not_met",
    }
    codes = {orjson.loads(d.value)["code"] for d in batch.routed.dead_letters}
    for code in codes:
        assert total(registry, "schakel_dead_letters_total", reason=code) >= 1


def test_no_identifier_from_the_traffic_is_a_label_value(batch):
    registry = observed(batch)
    values = identifiers(batch.signals)
    assert leaked(exposition(registry), values) == []
    # the scan itself finds a leak when there is one
    ean = next(v for s in batch.signals if s["source"] == "liander" for v in [s["data"]["ean"]])
    assert leaked(f'x_total{{partner="{ean}"}} 1.0\n', values) == [ean]


def test_identifier_shaped_label_values_become_other():
    for raw in ("871687884849956624", "1825 XH 30", "1402ah9", "ab-123-c0001", "Jan Jansen"):
        assert safe(raw) == OTHER
    for name in ("liander", "riec-nh", "energy.consumption_anomaly.v1", "schimmige-schuren"):
        assert safe(name) == name
    assert safe(None) == safe("-") == "none"
    # a record carrying an identifier where a name belongs is counted under "other"
    registry = CollectorRegistry()
    RouterMetrics(registry)._count(
        [
            {
                "result": "withheld",
                "covenant": None,
                "recipient": "-",
                "signal_id": "s1",
                "origin": "liander",
                "object": "871687884849956624",
                "reason": "no covenant rule allows",
            }
        ],
        [],
    )
    assert value(registry, "schakel_signals_in_total", {"partner": "liander", "type": OTHER}) == 1
    assert withheld_reason_of("anything", has_rule=False) == "no_rule"


def test_latency_and_lag(batch):
    registry = observed(batch, highwater=lambda tp: 1000)
    count = sum(len(records) for records in batch.records.values())
    assert value(registry, "schakel_publish_to_feed_seconds_count") == count
    assert value(registry, "schakel_publish_to_feed_seconds_bucket", {"le": "1.0"}) == 0
    assert value(registry, "schakel_publish_to_feed_seconds_bucket", {"le": "2.5"}) == count
    tp, records = next(iter(batch.records.items()))
    labels = {"topic": tp.topic, "partition": "0"}
    assert value(registry, "schakel_consumer_lag", labels) == 1000 - len(records)
    assert value(registry, "schakel_consumer_last_commit_timestamp_seconds", labels) == WALL


def test_revoked_partitions_stop_being_exported():
    registry = CollectorRegistry()
    metrics = RouterMetrics(registry, wall=lambda: 100.0)
    a, b = TopicPartition("signals.liander", 0), TopicPartition("signals.pwn", 3)
    metrics.polled([a, b])
    assert value(registry, "schakel_consumer_assigned_partitions") == 2
    labels_b = {"topic": "signals.pwn", "partition": "3"}
    assert value(registry, "schakel_consumer_last_poll_timestamp_seconds", labels_b) == 100.0
    metrics.polled([a])
    assert value(registry, "schakel_consumer_last_poll_timestamp_seconds", labels_b) is None
    assert metrics.liveness.assigned == 1
    assert metrics.liveness.last_poll > 0
