"""The router's pure batch step: what the loop writes for a batch of consumed records."""

from __future__ import annotations

import base64

import orjson

from services.router.batch import Consumed, route_batch
from services.router.topics import AUDIT, DEAD_LETTER, TopicLayout, partner_of, signals_topic
from tests.router.helpers import NOW, lines, policy_source, traffic


def consumed(
    values: list[bytes], topic_of=lambda v: signals_topic(orjson.loads(v)["source"])
) -> list[Consumed]:
    return [Consumed(topic_of(v), 0, i, v) for i, v in enumerate(values)]


def test_batch_matches_the_policy_and_counts_each_decision():
    source = policy_source()
    values = lines(traffic(300))
    routed = route_batch(consumed(values), source.current.registry, source.current.policy, NOW)
    assert routed.signals == 300
    assert routed.dead_letters == []
    assert len(routed.audit) == routed.delivered + routed.withheld
    assert len(routed.outbox) == routed.delivered > 0
    assert len({r["record_id"] for r in routed.audit}) == len(routed.audit)
    given = {r["record_id"]: r["feed_exchange_id"] for r in routed.audit}
    for entry in routed.outbox:
        message = orjson.loads(entry.value)
        # the recipient gets the keyed id its audit record names, never the hub's own
        assert message["exchange_id"] == given[entry.exchange_id] != entry.exchange_id
        assert entry.key != entry.exchange_id.encode()
        assert entry.recipient in source.current.policy.recipients


def test_spoofed_source_is_dead_lettered_with_the_original_bytes():
    source = policy_source()
    value = lines(traffic(5))[0]
    spoofed = [Consumed(signals_topic("pwn-other"), 3, 42, value)]
    routed = route_batch(spoofed, source.current.registry, source.current.policy, NOW)
    [letter] = routed.dead_letters
    body = orjson.loads(letter.value)
    assert body["code"] == "wrong_source"
    assert body["partner"] == "pwn-other"
    assert (body["topic"], body["partition"], body["offset"]) == (signals_topic("pwn-other"), 3, 42)
    assert base64.b64decode(body["original"]) == value
    [record] = routed.audit
    assert record["action"] == "reject" and record["origin"] == "pwn-other"
    assert routed.outbox == []


def test_each_kind_of_bad_input_becomes_one_dead_letter_and_one_rejection():
    source = policy_source()
    good = orjson.loads(lines(traffic(5))[0])
    bad_ean = (
        dict(good, id="bad-ean", data=dict(good["data"], ean="871685900000000012"))
        if "ean" in good["data"]
        else None
    )
    inputs = {
        "unparseable": b"{not json",
        "invalid_envelope": orjson.dumps(dict(good, id="no-time", time="yesterday")),
        "unknown_type": orjson.dumps(dict(good, id="unknown", type="energy.teleport.v1")),
        "schema_violation": orjson.dumps(dict(good, id="schema", data={"municipality": "GM0361"})),
    }
    if bad_ean:
        inputs["invalid_identifier"] = orjson.dumps(bad_ean)
    records = [
        Consumed(signals_topic(good["source"]), 0, i, v) for i, v in enumerate(inputs.values())
    ]
    routed = route_batch(records, source.current.registry, source.current.policy, NOW)
    codes = [orjson.loads(d.value)["code"] for d in routed.dead_letters]
    assert codes == list(inputs)
    assert [r["action"] for r in routed.audit] == ["reject"] * len(inputs)


def test_topic_layout_and_partner_names():
    spec = TopicLayout(signal_partitions=3, feed_partitions=2).spec(["liander"], ["riec-nh"])
    assert spec == {"signals.liander": 3, "feed.riec-nh": 2, DEAD_LETTER: 1, AUDIT: 1}
    assert partner_of("signals.liander") == "liander"
    assert partner_of(DEAD_LETTER) is None
    assert partner_of("feed.riec-nh") is None
