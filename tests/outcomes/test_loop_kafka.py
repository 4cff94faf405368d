"""The outcomes worker on a real broker: every return flow of the shipped covenant end to end
(held for the OM and then delivered, refused, without approval, withheld because no rule
allows it), and a crash after the audit write that loses nothing and doubles nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.audit.model import OutboxEntry
from services.audit.store import SqlAuditStore
from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.keys.testing import MemoryKeyStore
from services.outcomes.errors import OutcomeError
from services.outcomes.loop import OutcomeLoop, OutcomeLoopConfig
from services.outcomes.store import SqlOutcomeStore
from services.router.topics import TopicLayout, feed_topic, signals_topic, topic_configs
from tests.kafka_fixtures import selected_brokers
from tests.outcomes.helpers import (
    NOW,
    anomaly,
    approval,
    envelope,
    finding,
    nothing_found,
    observation,
    water,
)
from tests.router.helpers import policy_source

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(params=selected_brokers())
def fresh_broker(
    request: pytest.FixtureRequest, broker_factory: Callable[..., EmbeddedBroker]
) -> EmbeddedBroker:
    kind: BrokerKind = request.param
    made = broker_factory(kind)
    made.start()
    return made


class CrashingAudit(SqlAuditStore):
    """Fails once when noting produced offsets: the worker dies after its audit write and
    its produce, before it commits its offsets."""

    crashed = False

    def mark_produced(self, produced: Sequence[tuple[str, int, int]]) -> None:
        if produced and not CrashingAudit.crashed:
            CrashingAudit.crashed = True
            raise OutcomeError("simulated crash after the audit write")
        super().mark_produced(produced)


class Setup:
    def __init__(self, broker: EmbeddedBroker, tmp_path: Path) -> None:
        self.settings = KafkaSettings.local(broker.bootstrap)
        self.keys = MemoryKeyStore.for_tests()
        self.policies = policy_source(keys=self.keys)
        policy = self.policies.current.policy
        with KafkaTopicAdmin(self.settings) as admin:
            spec = TopicLayout(signal_partitions=2, feed_partitions=1).spec(
                policy.suppliers, policy.recipients
            )
            admin.ensure_topics(spec, topic_configs(spec))
        self.topics = [signals_topic(p) for p in sorted(policy.suppliers)]
        self.url = f"sqlite:///{tmp_path / 'hub.db'}"
        self.audit = SqlAuditStore(make_engine(self.url))
        self.audit.create_schema()  # the migrations (0010) make the outcome tables too
        self.store = SqlOutcomeStore(make_engine(self.url))

    def loop(self, audit: SqlAuditStore | None = None) -> OutcomeLoop:
        return OutcomeLoop(
            self.settings,
            self.store,
            audit or self.audit,
            self.policies,
            Pseudonymiser(self.keys),
            OutcomeLoopConfig(topics=self.topics, batch_max=50, session_timeout_ms=6000),
            clock=lambda: NOW,
        )


async def publish(
    settings: KafkaSettings, values: list[dict[str, Any]], *, timestamp_ms: int | None = None
) -> None:
    """Produce straight to Kafka, as ``schakel publish`` or a partner with ACLs does
    (``timestamp_ms``: the CreateTime the producer claims)."""
    producer = AIOKafkaProducer(linger_ms=5, acks="all", **settings.client_kwargs_aiokafka())
    await producer.start()
    try:
        sent = [
            await producer.send(
                signals_topic(str(v["source"])), orjson.dumps(v), timestamp_ms=timestamp_ms
            )
            for v in values
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_feed(settings: KafkaSettings, recipient: str, settle_s: float = 1.0
                    ) -> list[dict[str, Any]]:  # fmt: skip
    consumer = AIOKafkaConsumer(
        feed_topic(recipient),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **settings.client_kwargs_aiokafka(),
    )
    await consumer.start()
    values: list[dict[str, Any]] = []
    try:
        deadline, quiet = time.monotonic() + 20, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet < settle_s:
            batch = await consumer.getmany(timeout_ms=300)
            got = [orjson.loads(m.value or b"{}") for ms in batch.values() for m in ms]
            if got:
                values.extend(got)
                quiet = time.monotonic()
    finally:
        await consumer.stop()
    return values


async def run_until(loop: OutcomeLoop, done: Callable[[], bool], timeout: float = 60) -> None:
    await loop.start()
    task = asyncio.create_task(loop.run())
    deadline = time.monotonic() + timeout
    try:
        while not done() and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await loop.stop()
        await asyncio.wait({task}, timeout=15)


def unique(messages: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Messages by exchange id, as a recipient that drops duplicates keeps them."""
    return {m["exchange_id"]: m for m in messages}


def returns_of(audit: SqlAuditStore) -> list[dict[str, Any]]:
    return [r for _, r in audit.records(limit=10_000) if r.get("answers")]


def test_every_return_flow_on_a_real_broker(fresh_broker: EmbeddedBroker, tmp_path: Path) -> None:
    asyncio.run(_flows(Setup(fresh_broker, tmp_path)))


async def _flows(s: Setup) -> None:
    grid, housing, waterco = anomaly(), observation(), water()
    tip = envelope(
        "meld-misdaad-anoniem",
        "residents.anonymous_tip.v1",
        {"category": "cannabis_cultivation", "address": "1811AB 12A", "municipality": "GM0361",
         "received_at": "2026-10-01T20:00:00Z", "channel": "web_form"},
        days_ago=45,
    )  # fmt: skip
    elsewhere = anomaly(address="1015 CD 7", ean="871685900000000028")
    found = finding()
    refused_at = finding(address="1015 CD 7")
    checked = nothing_found(address="1015 CD 7", days_ago=1)
    # the worker reads the signals before the outcomes are sent: on a broker that keeps the
    # producer's CreateTime (Tansu) a signal counts as received when the worker read it
    await publish(s.settings, [grid, housing, waterco, tip, elsewhere])
    reader = s.loop()
    await run_until(reader, lambda: reader.stats.signals >= 5)
    await publish(s.settings, [found, refused_at, checked])
    loop = s.loop()
    # 1. the findings are held for the OM; the check that found nothing goes back at once
    await run_until(loop, lambda: loop.stats.signals >= 3 and loop.stats.held >= 4)
    assert (loop.stats.outcomes, loop.stats.held) == (3, 4)
    first = unique(await read_feed(s.settings, "liander"))
    assert [m["answers"]["signal_id"] for m in first.values()] == [elsewhere["id"]]
    assert next(iter(first.values()))["type"] == "police.nothing_found.v1"

    # 2. the OM approves one finding and refuses the other
    await publish(s.settings, [approval(found), approval(refused_at, decision="refused")])
    loop = s.loop()
    await run_until(loop, lambda: loop.stats.approvals >= 2)
    feeds = {p: unique(await read_feed(s.settings, p)) for p in ("liander", "woonwaard", "pwn")}
    answered = {p: sorted(m["answers"]["signal_id"] for m in f.values()) for p, f in feeds.items()}
    assert answered == {
        "liander": sorted([grid["id"], elsewhere["id"]]),  # the finding, and the empty check
        "woonwaard": [housing["id"]],
        "pwn": [waterco["id"]],
    }
    for partner, got in feeds.items():
        for message in got.values():
            blob = orjson.dumps(message)
            for other in (grid, housing, waterco, tip, elsewhere, found, refused_at, checked):
                if other["id"] != message["answers"]["signal_id"]:
                    assert other["id"].encode() not in blob, partner
            assert b"1811" not in blob and b"1015" not in blob and b"8716" not in blob
    assert await read_feed(s.settings, "meld-misdaad-anoniem", settle_s=0.5) == []

    # 3. the audit log accounts for every pair, delivered, held or withheld
    by_pair = {(r["signal_id"], r["recipient"], r["answers"]["signal_id"], r["result"],
                r["reason"] or "") for r in returns_of(s.audit)}  # fmt: skip
    results = {(o, rec, ans): (res, why) for o, rec, ans, res, why in by_pair
               if not why.startswith("held")}  # fmt: skip
    assert results[(found["id"], "liander", grid["id"])][0] == "delivered"
    assert results[(found["id"], "meld-misdaad-anoniem", tip["id"])] == (
        "withheld",
        "no covenant rule allows returning police.location_finding.v1 from politie-nh to "
        "meld-misdaad-anoniem",
    )
    assert results[(refused_at["id"], "liander", elsewhere["id"])][0] == "withheld"
    assert "om-nh refused" in results[(refused_at["id"], "liander", elsewhere["id"])][1]
    held = [r for r in returns_of(s.audit) if str(r["reason"]).startswith("held")]
    assert len(held) == 4
    assert s.audit.count(action="use", recipient="hub:outcomes") == 3
    undelivered: list[OutboxEntry] = s.audit.undelivered()
    assert {e.recipient for e in undelivered} == {"liander", "woonwaard", "pwn"}
    assert all(e.partition is not None for e in undelivered)  # produced, not yet consumed
    s.store.close()
    s.audit.close()


def test_a_crash_after_the_audit_write_loses_nothing_and_doubles_nothing(
    fresh_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    asyncio.run(_crash(Setup(fresh_broker, tmp_path)))


async def _crash(s: Setup) -> None:
    CrashingAudit.crashed = False
    grid, housing = anomaly(), observation()
    checked = nothing_found()
    await publish(s.settings, [grid, housing])
    reader = s.loop()  # read before the check is sent (see _flows)
    await run_until(reader, lambda: reader.stats.signals >= 2)
    await publish(s.settings, [checked])
    crashing = CrashingAudit(make_engine(s.url))
    first = s.loop(crashing)
    await run_until(first, lambda: CrashingAudit.crashed)
    assert CrashingAudit.crashed
    before = len(returns_of(s.audit))
    second = s.loop()
    await run_until(second, lambda: second.stats.signals >= 1)
    assert second.stats.signals >= 1  # the batch was read again
    records = returns_of(s.audit)
    assert len(records) == before == 2  # audited once, replay included
    liander = await read_feed(s.settings, "liander")
    woonwaard = await read_feed(s.settings, "woonwaard")
    assert len(unique(liander)) == 1 and len(unique(woonwaard)) == 1
    assert len(liander) >= 1  # produced once before the crash, maybe again after it
    assert next(iter(unique(liander).values()))["answers"]["signal_id"] == grid["id"]
    assert next(iter(unique(woonwaard).values()))["answers"]["signal_id"] == housing["id"]
    assert all(e.partition is not None for e in s.audit.undelivered())
    s.store.close()
    s.audit.close()
    crashing.close()


def test_a_signal_backdated_on_kafka_before_an_outcome_is_not_answered(
    fresh_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """The probe: once the police's check is in, a partner produces straight to Kafka a signal
    about the address whose record claims (CreateTime) it was sent a month ago. noida stamps
    its own append time over the claim; Tansu keeps it, and the worker then counts the signal
    received when it read it. Either way only the signal sent before the check is answered."""
    asyncio.run(_probe(Setup(fresh_broker, tmp_path)))


async def _probe(s: Setup) -> None:
    honest = anomaly(days_ago=60)
    probe = anomaly(days_ago=59, ean="871685900000000028")  # same address, another meter
    checked = nothing_found(days_ago=1)
    await publish(s.settings, [honest])
    reader = s.loop()
    await run_until(reader, lambda: reader.stats.signals >= 1)
    await publish(s.settings, [checked])
    answering = s.loop()
    await run_until(answering, lambda: answering.stats.delivered >= 1)
    assert answering.stats.delivered == 1
    a_month_ago = int((time.time() - 30 * 86_400) * 1000)
    await publish(s.settings, [probe], timestamp_ms=a_month_ago)
    late = s.loop()
    await run_until(late, lambda: late.stats.signals >= 1)
    assert late.stats.signals == 1 and late.stats.indexed == 1  # read and indexed, …
    assert late.stats.delivered == late.stats.withheld == late.stats.held == 0  # … not answered
    answered = [m["answers"]["signal_id"] for m in unique(await read_feed(s.settings, "liander")
                                                          ).values()]  # fmt: skip
    assert answered == [honest["id"]]
    assert [r["answers"]["signal_id"] for r in returns_of(s.audit)] == [honest["id"]]
    s.store.close()
    s.audit.close()
