"""What the worker takes as a record's receipt time (no broker: records as aiokafka hands them).

A broker-stamped LogAppendTime is the receipt; a CreateTime is the producer's claim and never
moves a signal earlier than the worker read it (:func:`services.outcomes.loop.receipt`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from services.outcomes.loop import receipt
from services.router.topics import signals_topic
from tests.outcomes.helpers import NOW, Hub, anomaly, make_hub, nothing_found


@pytest.fixture
def hub() -> Hub:
    return make_hub()


@dataclass
class Message:  # the fields of an aiokafka ConsumerRecord the worker reads
    value: bytes
    timestamp: int
    timestamp_type: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _decide(
    hub: Hub, batches: list[list[tuple[dict[str, Any], datetime, int, datetime]]]
) -> list[str]:
    """Feed batches of (envelope, record timestamp, timestamp_type, read time); answered ids."""
    answered: list[str] = []
    for batch in batches:
        records = [
            receipt(signals_topic(e["source"]), Message(orjson.dumps(e), _ms(ts), kind), read)
            for e, ts, kind, read in batch
        ]
        step = hub.step
        extracted = step.extract(records, NOW)
        hub.store.write(extracted.entries)
        decided = step.decide(extracted.entries, hub.store, NOW)
        answered += [orjson.loads(f.value)["answers"]["signal_id"] for f in decided.feed]
    return answered


def test_a_backdated_create_time_counts_as_read_not_as_claimed(hub: Hub):
    checked = nothing_found(days_ago=1)
    probe = anomaly(days_ago=59)
    t = NOW - timedelta(hours=2)
    month = timedelta(days=30)
    answered = _decide(
        hub,
        [
            [(checked, t, 0, t + timedelta(milliseconds=5))],  # via the gateway: CreateTime
            [(probe, t - month, 0, t + timedelta(minutes=5))],  # straight to Kafka, backdated
        ],
    )
    assert answered == []


def test_a_log_append_time_is_the_receipt_whenever_the_worker_reads_it(hub: Hub):
    checked = nothing_found(days_ago=1)
    early = anomaly(days_ago=59)
    t = NOW - timedelta(hours=2)
    later = t + timedelta(hours=1)
    answered = _decide(
        hub,
        [  # the signal was appended before the check, read an hour after it
            [(checked, t, 1, later)],
            [(early, t - timedelta(minutes=1), 1, later)],
        ],
    )
    assert answered == [early["id"]]


def test_a_signal_read_before_the_check_was_produced_is_answered_on_create_time(hub: Hub):
    checked = nothing_found(days_ago=1)
    early = anomaly(days_ago=59)
    t = NOW - timedelta(hours=2)
    answered = _decide(
        hub,
        [
            [(early, t - timedelta(days=1), 0, t - timedelta(minutes=1))],
            [(checked, t, 0, t + timedelta(seconds=1))],
        ],
    )
    assert answered == [early["id"]]
