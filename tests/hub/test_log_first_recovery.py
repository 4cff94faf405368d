"""Re-delivery after broker data loss on the log-first path: the indexer's feed copies drive it.

Tansu (memory only, audit-first): the hub indexes the audit topic before the broker stops; a
restart empties every topic, and :meth:`Maintenance.recover` re-delivers every feed message
from the copies. noida (persistent, transactional): after a clean stop nothing is missing, and
the copies carry the offsets the transaction gave the feeds, so nothing is re-delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from services.audit.store import SqlAuditStore
from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.database.engine import make_engine
from services.hub.maintenance import Maintenance
from services.indexer.drain import drain
from services.router.loop import AuditPath
from services.router.topics import TopicLayout, feed_topic
from tests.router.helpers import lines, policy_source, traffic
from tests.router.test_log_first_kafka import expected_ids, read_all, router, run_router
from tests.router.test_loop_kafka import prepare_topics, publish

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


@pytest.mark.parametrize(("kind", "path"), [("tansu", "audit-first"), ("noida", "transactional")])
def test_feed_messages_the_broker_lost_are_redelivered_from_the_indexed_copies(
    kind: str, path: AuditPath, broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
) -> None:
    made = broker_factory(kind)
    made.start()
    settings = KafkaSettings.local(made.bootstrap)
    policy = policy_source().current.policy
    values = lines(traffic(150))
    _, _, want_feeds = expected_ids(values)
    feeds = [feed_topic(r) for r in sorted(policy.recipients)]
    store = SqlAuditStore(make_engine(f"sqlite:///{tmp_path / 'audit.db'}"))
    store.create_schema()

    async def route() -> None:
        prepare_topics(settings, set(policy.suppliers), set(policy.recipients))
        await publish(settings, values)
        loop = router(settings, path, None)
        await run_router(loop, lambda: loop.stats.signals >= len(values))

    asyncio.run(route())
    assert drain(settings, store, timeout_s=60) > 0  # what `schakel up` does before a stop
    made.restart()  # a clean stop and start: Tansu loses everything, noida keeps it

    spec = TopicLayout(signal_partitions=2, feed_partitions=2).spec(
        policy.suppliers, policy.recipients
    )
    report = Maintenance(settings, store, spec, policy.recipients).recover()
    seen = asyncio.run(read_all(settings, feeds, committed=True))
    delivered = sorted(orjson.loads(v)["exchange_id"] for _, v in seen)
    assert delivered == sorted(want_feeds)  # every feed message there exactly once
    if kind == "tansu":
        assert report.redelivered == len(want_feeds)
    else:
        assert report.redelivered == 0  # the copies' offsets show the feeds hold them all
    store.close()
