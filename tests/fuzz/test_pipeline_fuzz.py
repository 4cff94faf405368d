"""The router's pure batch step takes any bytes on any signals topic without raising.

Every record becomes either decisions (one audit record each, deliveries in the outbox) or
exactly one dead letter with a code and a reason, and one rejection record.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.fuzz.strategies import fuzz_settings, raw_inputs
from tests.router.helpers import policy_source

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = policy_source().current
PARTNERS = [*sorted(POLICY.policy.suppliers), "unknown-partner"]


@st.composite
def batches(draw: st.DrawFn) -> list[Consumed]:
    values = draw(st.lists(raw_inputs(), min_size=1, max_size=8))
    out = []
    for offset, value in enumerate(values):
        partner = draw(st.sampled_from(PARTNERS))
        try:  # half the time on its own partner's topic, so good signals get through
            claimed = orjson.loads(value).get("source")
        except (orjson.JSONDecodeError, AttributeError):
            claimed = None
        if isinstance(claimed, str) and claimed in PARTNERS and draw(st.booleans()):
            partner = claimed
        out.append(Consumed(signals_topic(partner), 0, offset, value))
    return out


@fuzz_settings(200)
@given(batches())
def test_any_batch_routes_without_raising_and_accounts_for_every_record(records):
    routed = route_batch(records, POLICY.registry, POLICY.policy, NOW)
    assert routed.signals == len(records)
    rejected = [r for r in routed.audit if r["action"] == "reject"]
    assert len(rejected) == len(routed.dead_letters)
    assert len(routed.audit) == len(rejected) + routed.delivered + routed.withheld
    assert len(routed.outbox) == routed.delivered
    originals = []
    for letter in routed.dead_letters:
        body = orjson.loads(letter.value)
        assert body["code"] and body["reason"]
        originals.append(base64.b64decode(body["original"]))
    # each dead letter carries the bytes of one consumed record, in order
    values = [r.value for r in records]
    position = 0
    for original in originals:
        position = values.index(original, position) + 1
