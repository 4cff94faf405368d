"""Consumer groups on the real embedded brokers: state and members of a live group, and an
honest "not reported" when a broker does not answer (services/broker/groups.py)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from kafka.errors import KafkaConnectionError

from services.broker.groups import _report, consumer_groups
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin

pytestmark = pytest.mark.timeout(120)


async def members_of(
    settings: KafkaSettings, topic: str, group: str, count: int, probe: Callable[[], Any]
) -> tuple[Any, Any]:
    """Join ``count`` consumers to ``group``; ``probe`` (in a thread) while they are members,
    then again after one of them committed."""
    consumers = [
        AIOKafkaConsumer(
            topic,
            group_id=group,
            group_instance_id=f"worker-{n}",
            enable_auto_commit=False,
            # Kafka's floor (group.min.session.timeout.ms); Tansu holds each join for half of
            # it, and the consumers join together, in one round
            session_timeout_ms=6_000,
            heartbeat_interval_ms=500,
            **settings.client_kwargs_aiokafka(),
        )
        for n in range(count)
    ]
    try:
        await asyncio.gather(*(consumer.start() for consumer in consumers))
        deadline = time.monotonic() + 60
        while not all(c.assignment() for c in consumers):
            assert time.monotonic() < deadline, "the group never settled"
            await asyncio.gather(*(c.getmany(timeout_ms=200) for c in consumers))
        before = await asyncio.to_thread(probe)
        first = consumers[0]
        await first.commit(dict.fromkeys(first.assignment(), 0))
        after = await asyncio.to_thread(probe)
        return before, after
    finally:
        for consumer in consumers:
            await consumer.stop()


@pytest.mark.kafka
def test_a_live_group_is_described_with_its_state_and_members(
    kafka_settings: KafkaSettings, topic_admin: KafkaTopicAdmin, unique_topic
):
    topic = unique_topic()
    topic_admin.ensure_topics({topic: 2})
    group, nobody = f"g-{uuid.uuid4().hex[:8]}", f"none-{uuid.uuid4().hex[:8]}"
    before, after = asyncio.run(
        members_of(
            kafka_settings,
            topic,
            group,
            2,
            lambda: consumer_groups(kafka_settings, [group, nobody]),
        )
    )
    for report in (before, after):
        assert report.problem is None
        live = report.groups[group]
        assert (live.state, live.members, live.active) == ("Stable", 2, True)
        absent = report.groups[nobody]
        assert absent.members == 0 and absent.state in ("Dead", "Empty") and not absent.active
    assert after.groups[group].listed, "a group that committed is listed by both brokers"


class _Refusing:
    """An admin client whose broker answers ListGroups but not DescribeGroups."""

    def list_groups(self) -> list[dict[str, str]]:
        return [{"group_id": "schakel-router", "group_state": "Unknown"}]

    def describe_groups(self, names: list[str]) -> dict[str, Any]:
        raise KafkaConnectionError("gone")


def test_a_broker_that_does_not_describe_is_reported_as_such_never_as_zero():
    report = _report(_Refusing(), {"schakel-coverage"})
    router = report.groups["schakel-router"]
    assert (router.state, router.members, router.listed) == (None, None, True)
    assert report.groups["schakel-coverage"].members is None
    assert report.problem == "DescribeGroups failed (KafkaConnectionError)"
