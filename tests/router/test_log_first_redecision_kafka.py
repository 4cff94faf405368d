"""A batch read again under a changed covenant is not decided again (issue 12, trust).

Attack: the router logs a batch's decisions, dies before its feed messages are sent (Tansu:
between the audit acknowledgement and the feed send; noida: before the transaction commits),
the covenant changes (the tip rule, which withheld every tip, now delivers them), and a router
restarts within the audit indexer's lag. Whatever the broker, after indexing every feed
message on the broker has an indexed audit record stating exactly that delivery (decision,
rule, exchange id), and every delivered record has its feed message.

On Tansu the first decisions are on the log (acknowledged), so they stand: the re-read
batch's tips stay withheld and its delivered feeds are produced as logged. On noida the
crashed transaction never committed, so nothing of it is visible and the batch is decided
under the new covenant.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.audit.testing import MemoryAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.config import ROOT
from services.core.pipeline import process
from services.router.loop import AuditPath, CrashPoint, LoopConfig, RouterLoop
from services.router.policy_source import PolicySource
from services.router.topics import feed_topic, signals_topic
from tests.router.helpers import NOW, lines, policy_source, traffic
from tests.router.test_log_first_kafka import (
    CrashError,
    crash_once,
    index_all,
    read_all,
    run_router,
)
from tests.router.test_loop_kafka import prepare_topics, publish

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

TIP = "residents.anonymous_tip.v1"


def withholding_tips(tmp_path: Path) -> PolicySource:
    """The shipped covenants with the tip rule's condition never true: every tip withheld."""
    folder = tmp_path / "covenants-before"
    shutil.copytree(ROOT / "covenants", folder)
    covenant = folder / "nh-drugsalert" / "2025.1.yaml"
    text = covenant.read_text()
    condition = "when: data.municipality in regions.riec_nh"
    assert text.count(condition) == 1
    covenant.write_text(text.replace(condition, 'when: data.municipality == "GM9999"'))
    return policy_source([folder])


def loop(
    settings: KafkaSettings, source: PolicySource, path: AuditPath, crash: CrashPoint | None
) -> RouterLoop:
    topics = [signals_topic(p) for p in sorted(source.current.policy.suppliers)]
    return RouterLoop(
        settings,
        MemoryAuditStore(),  # the log-first paths never write it; the indexer fills another
        source,
        LoopConfig(topics=topics, instance_id="router-0", audit_path=path),
        clock=lambda: NOW,
        crash_point=crash,
    )


@pytest.mark.parametrize(
    ("kind", "path", "point"),
    [("tansu", "audit-first", "audit-acked"), ("noida", "transactional", "before-commit")],
)
def test_a_batch_read_again_under_a_changed_covenant_keeps_feed_and_audit_in_step(
    kind: str,
    path: AuditPath,
    point: str,
    broker_factory: Callable[..., EmbeddedBroker],
    tmp_path: Path,
) -> None:
    made = broker_factory(kind)
    made.start()
    settings = KafkaSettings.local(made.bootstrap)
    store = MemoryAuditStore()
    values = lines([s for s in traffic(400) if s["type"] == TIP])
    assert len(values) > 20
    asyncio.run(_crash_change_restart(settings, values, path, point, tmp_path, store))
    records = [body for _, body in store.records(limit=100_000)]
    decided = [r for r in records if r["action"] != "reject"]
    feeds = asyncio.run(_feed_messages(settings))

    by_feed_id = {r["feed_exchange_id"]: r for r in decided if r["result"] == "delivered"}
    for feed in feeds:  # no feed message without an audit record stating that delivery
        record = by_feed_id.get(feed["exchange_id"])
        assert record is not None, "a feed message whose audit record says withheld"
        assert record["covenant"] == feed["covenant"]  # the same rule
        assert feed["_topic"] == feed_topic(str(record["recipient"]))
    assert {f["exchange_id"] for f in feeds} == set(by_feed_id)  # and no delivery unsent
    assert len({r["record_id"] for r in decided}) == len(decided)

    now = _decided_now(values)
    changed = [r for r in decided if r["result"] != now[r["record_id"]]]
    if kind == "tansu":
        # the crashed batch's tips were logged withheld and stand so, whatever the covenant
        # says now (the attack happened: the new covenant would deliver them)
        assert changed and all(r["result"] == "withheld" for r in changed)
    else:
        # nothing of the aborted transaction is visible: all decided under the new covenant
        assert changed == []


def _decided_now(values: list[bytes]) -> dict[str, str]:
    """Record id → the result the changed covenant gives."""
    source = policy_source()
    return {
        d.exchange_id: d.result
        for value in values
        for d in process(value, source.current.registry, source.current.policy, NOW).decisions
    }


async def _crash_change_restart(
    settings: KafkaSettings,
    values: list[bytes],
    path: AuditPath,
    point: str,
    tmp_path: Path,
    store: MemoryAuditStore,
) -> None:
    before, after = withholding_tips(tmp_path), policy_source()
    policy = after.current.policy
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    await publish(settings, values)

    first = loop(settings, before, path, crash_once(point))
    with pytest.raises(CrashError):
        await run_router(first, lambda: first.stats.batches > 0)
    second = loop(settings, after, path, None)  # restarted with the changed covenant
    await run_router(second, lambda: second.stats.signals >= len(values))
    decisions = len(values) * 1  # one recipient (riec-nh) per tip
    await index_all(settings, store, decisions)


async def _feed_messages(settings: KafkaSettings) -> list[dict[str, Any]]:
    recipients = sorted(policy_source().current.policy.recipients)
    seen = await read_all(settings, [feed_topic(r) for r in recipients], committed=True)
    return [{**orjson.loads(v), "_topic": t} for t, v in seen]
