"""Signed batches through the real router on the embedded broker: the good batch reaches the
recipients' feeds for one root verification, its audit records in the store prove each signal
with the partner's public key, and every attack lands on the dead-letter topic with its code."""

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
from services.core.signature_proof import check
from services.router.loop import LoopConfig, RouterLoop
from services.router.topics import DEAD_LETTER, signals_topic
from services.router.worker import audit_path_for_broker
from tests.kafka_fixtures import selected_brokers
from tests.router.helpers import NOW, indexer_running, policy_source, until
from tests.router.test_batch_signatures import EXPECTED, batch_cases
from tests.router.test_loop_kafka import prepare_topics, publish, read_topic, run_until
from tests.router.test_signatures import NEW_KEY, rotated_covenants

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]


@pytest.fixture(params=selected_brokers())
def signed_broker(
    request: pytest.FixtureRequest, broker_factory: Callable[..., EmbeddedBroker]
) -> EmbeddedBroker:
    kind: BrokerKind = request.param
    made = broker_factory(kind)
    made.start()
    return made


def test_router_delivers_a_signed_batch_and_dead_letters_every_attack(
    signed_broker: EmbeddedBroker, tmp_path: Path
):
    asyncio.run(_batches(signed_broker, tmp_path))


async def _batches(broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = KafkaSettings.local(broker.bootstrap)
    source = policy_source([rotated_covenants(tmp_path)])
    policy = source.current.policy
    good, attacks = batch_cases(source)
    check_source = policy_source([rotated_covenants(tmp_path / "expected")])
    expected = sum(
        1
        for value in good
        for d in process(
            value, check_source.current.registry, check_source.current.policy, NOW
        ).decisions
    )
    keyring = policy.keyring
    assert keyring is not None
    before = keyring.roots.verifications  # finding delivered signals verified some
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
    await publish(settings, [*good, *attacks.values()])
    total = len(good) + len(attacks)
    async with indexer_running(settings, store):  # the indexer writes the audit records
        await run_until(loop, lambda: loop.stats.signals >= total)
        await until(lambda: store.count() >= expected + len(attacks), "every record indexed")

    assert loop.stats.dead_letters == len(attacks)
    dead = [orjson.loads(v) for v in await read_topic(settings, DEAD_LETTER, len(attacks))]
    assert sorted(d["code"] for d in dead) == sorted(EXPECTED.values())
    bodies = [body for _, body in store.records(limit=1000)]
    decided = [b for b in bodies if b["action"] != "reject"]
    assert len(decided) == expected
    sent = {orjson.loads(v)["id"]: orjson.loads(v) for v in good}
    for body in decided:
        proven = check(
            body["partner_signature"], NEW_KEY.public_key(), envelope=sent[body["signal_id"]]
        )
        assert proven.ok and proven.content, proven.message
    # one root each: the good batch, the forged, the expired and the foreign key's (the
    # changed, moved and spliced signals fail their path and cost no verification)
    assert source.current.policy.keyring is keyring
    assert keyring.roots.verifications - before == 4
