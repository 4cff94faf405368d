"""Signed signals through the real router on the embedded broker.

The same six signals as tests/router/test_signatures.py: the validly signed one reaches the
recipients' feeds; unsigned, forged, re-signed by another partner, tampered and expired-key
signals land on the dead-letter topic and in the audit log as rejected, each with its reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from services.audit.testing import MemoryAuditStore
from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.core.pipeline import process
from services.router.loop import LoopConfig, RouterLoop
from services.router.topics import DEAD_LETTER, feed_topic, signals_topic
from services.router.worker import audit_path_for_broker
from tests.kafka_fixtures import selected_brokers
from tests.router.helpers import NOW, indexer_running, policy_source, until
from tests.router.test_loop_kafka import prepare_topics, publish, read_topic, run_until
from tests.router.test_signatures import EXPECTED_CODES, cases, rotated_covenants

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.fixture(params=selected_brokers())
def signed_broker(
    request: pytest.FixtureRequest, broker_factory: Callable[..., EmbeddedBroker]
) -> EmbeddedBroker:
    kind: BrokerKind = request.param
    made = broker_factory(kind)
    made.start()
    return made


def test_router_delivers_the_signed_signal_and_dead_letters_the_rest(
    signed_broker: EmbeddedBroker, tmp_path: Path
):
    asyncio.run(_signed(signed_broker, tmp_path))


async def _signed(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = KafkaSettings.local(broker.bootstrap)
    source = policy_source([rotated_covenants(tmp_path)])
    policy = source.current.policy
    values = cases(source)
    delivered = [
        d
        for d in process(values["delivered"], source.current.registry, policy, NOW).decisions
        if d.delivered
    ]
    assert delivered
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    store = MemoryAuditStore()
    loop = RouterLoop(
        settings,
        store,
        source,
        LoopConfig(
            topics=[signals_topic(p) for p in sorted(policy.suppliers)],
            audit_path=audit_path_for_broker(broker.supports_transactions),  # as schakel up
        ),
        clock=lambda: NOW,
    )
    await loop.start()
    await publish(settings, list(values.values()))
    records = len(EXPECTED_CODES) + len(
        process(values["delivered"], source.current.registry, policy, NOW).decisions
    )
    async with indexer_running(settings, store):  # the indexer writes the audit records
        await run_until(loop, lambda: loop.stats.signals >= len(values))
        await until(lambda: store.count() >= records, "every audit record indexed")

    assert loop.stats.dead_letters == len(EXPECTED_CODES)
    dead = [orjson.loads(v) for v in await read_topic(settings, DEAD_LETTER, len(EXPECTED_CODES))]
    assert sorted(d["code"] for d in dead) == sorted(EXPECTED_CODES.values())
    rejected = [body for _, body in store.records(limit=1000) if body["action"] == "reject"]
    assert sorted(r["reason"].split(":", 1)[0] for r in rejected) == sorted(EXPECTED_CODES.values())
    assert all(r["result"] == "rejected" and r["origin"] == "liander" for r in rejected)
    for decision in delivered:
        feed = [
            orjson.loads(v) for v in await read_topic(settings, feed_topic(decision.recipient), 1)
        ]
        assert [m["exchange_id"] for m in feed] == [decision.feed_id]
