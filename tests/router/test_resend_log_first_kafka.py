"""A partner re-sends a signal id within the audit indexer's lag, on real brokers.

No indexer runs while the router works, so the index holds nothing: the re-send must be
screened against the audit log. The outcome must be the sql path's (tests/router/
test_resend.py): the same signal again adds no feed message and no decision; other content
under the id is dead-lettered as ``conflicting_resend`` with one refusal record, and the first
decision stands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from services.audit.testing import MemoryAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.core.pipeline import process
from services.router.loop import AuditPath
from services.router.resend import CONFLICTING_RESEND
from services.router.topics import DEAD_LETTER, feed_topic
from tests.router.helpers import NOW, policy_source
from tests.router.test_log_first_kafka import index_all, read_all, router
from tests.router.test_loop_kafka import prepare_topics, publish
from tests.router.test_resend import delivered_signal
from tests.router.test_resend_log_first import changed

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


@pytest.mark.parametrize(("kind", "path"), [("tansu", "audit-first"), ("noida", "transactional")])
def test_a_changed_resend_within_the_lag_is_refused_as_on_the_sql_path(
    kind: str, path: AuditPath, broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    made = broker_factory(kind)
    made.start()
    settings = KafkaSettings.local(made.bootstrap)
    signal = delivered_signal()
    store = MemoryAuditStore()
    feeds, dead = asyncio.run(_send_twice(settings, path, signal, store))

    first = [f for f in feeds if f]
    assert first, "the signal was delivered"
    assert len({f["exchange_id"] for f in first}) == len(first)  # each feed message once
    assert [(d["code"], d["signal_id"]) for d in dead] == [(CONFLICTING_RESEND, signal["id"])]
    records = [body for _, body in store.records(limit=1000)]
    refused = [r for r in records if r["action"] == "reject"]
    assert len(refused) == 1 and str(refused[0]["reason"]).startswith(f"{CONFLICTING_RESEND}: ")
    decided = [r for r in records if r["action"] != "reject"]
    delivered = {r["feed_exchange_id"] for r in decided if r["result"] == "delivered"}
    assert {f["exchange_id"] for f in first} == delivered  # the first decision stands


async def _send_twice(
    settings: KafkaSettings, path: AuditPath, signal: dict[str, object], store: MemoryAuditStore
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    policy = policy_source().current.policy
    prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
    loop = router(settings, path, None)
    await loop.start()
    task = asyncio.create_task(loop.run())
    try:
        await publish(settings, [orjson.dumps(signal)])
        await _until(lambda: loop.stats.signals >= 1)
        # within the lag (no indexer runs): other content, then the same signal, again
        await publish(settings, [orjson.dumps(changed(signal)), orjson.dumps(signal)])
        await _until(lambda: loop.stats.signals >= 3)
    finally:
        await loop.stop()
        await asyncio.wait_for(task, 15)
    source = policy_source()
    decisions = process(orjson.dumps(signal), source.current.registry, policy, NOW).decisions
    await index_all(settings, store, len(decisions) + 1)  # and the refusal
    recipients = sorted(policy.recipients)
    seen = await read_all(settings, [*map(feed_topic, recipients), DEAD_LETTER], committed=True)
    feeds = [orjson.loads(v) for t, v in seen if t != DEAD_LETTER]
    dead = [orjson.loads(v) for t, v in seen if t == DEAD_LETTER]
    return feeds, dead


async def _until(done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the router did not read the signals in time"
        await asyncio.sleep(0.05)
