"""End to end on a real broker: a case handed over in the workplace goes through the real
router into the mayor's feed — the mayor gets exactly what the rule shares, the audit holds the
exchange — and a hand-over no rule allows publishes nothing and is audited as withheld."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from services.broker.embedded import EmbeddedBroker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin
from services.core import records
from services.core.pipeline import process
from services.core.pseudonyms import Domain, Pseudonymiser
from services.demo.keys import DemoSigner
from services.riec.cases import CaseFiles
from services.riec.handover import HandOver
from services.riec.model import RiecError
from services.riec.publish import kafka_publisher
from services.router.loop import LoopConfig, RouterLoop
from services.router.topics import TopicLayout, feed_topic, signals_topic
from tests.kafka_fixtures import selected_brokers
from tests.riec.helpers import DRUGS, RIEC, build, user
from tests.riec.test_handover import MAYORS, address_item
from tests.router.helpers import policy_source
from tests.router.test_loop_kafka import read_topic, run_until
from tests.stacking.helpers import NOW

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(240)]


def test_a_hand_over_reaches_the_mayors_feed_through_the_router(
    broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path
):
    broker = broker_factory(selected_brokers()[0])
    broker.start()
    settings = KafkaSettings.local(broker.bootstrap)
    site = build(tmp_path / "hub.db")
    source = policy_source(keys=site.keys)  # the router's own policy, on the hub's keys
    policy = source.current.policy
    with KafkaTopicAdmin(settings) as admin:
        admin.ensure_topics(TopicLayout(2, 2).spec({RIEC}, set(policy.recipients)))
    handover = HandOver(
        Pseudonymiser(site.keys), lambda: (site.loaded.registry, site.loaded.policy),
        DemoSigner(), kafka_publisher(settings),
    )  # fmt: skip
    cases = CaseFiles(site.workplace, site.reid, site.outcomes, handover)
    ana = user(site, "ana")

    item, pseudonym = address_item(site, mayor=True)
    mayor = MAYORS[str(item.municipality)]
    case = cases.open(ana, item.id, "closure procedure")
    sent = cases.hand_over(ana, case.id, pseudonym, "closure_13b")
    assert sent.recipients == (mayor,)
    other, foreign = address_item(site, mayor=False)
    refused = cases.open(ana, other.id, "no mayor's rule here")
    with pytest.raises(RiecError, match="no covenant rule"):
        cases.hand_over(ana, refused.id, foreign, "closure_13b")

    loop = RouterLoop(
        settings, site.workplace.audit, source,
        LoopConfig(topics=[signals_topic(RIEC)], audit_path="sql"), clock=lambda: NOW,
    )  # fmt: skip

    async def route() -> tuple[list[bytes], dict[str, list[bytes]]]:
        await loop.start()
        await run_until(loop, lambda: loop.stats.signals >= 1)
        published = await read_topic(settings, signals_topic(RIEC), 1, timeout=10)
        feeds = {
            r: await read_topic(settings, feed_topic(r), 1 if r == mayor else 0, timeout=5)
            for r in sorted(set(MAYORS.values()) | {RIEC})
        }
        return published, feeds

    published, feeds = asyncio.run(route())
    assert len(published) == 1  # the withheld hand-over was never published
    assert loop.stats.signals == 1
    assert {r: len(v) for r, v in feeds.items()} == {
        r: int(r == mayor) for r in sorted(set(MAYORS.values()) | {RIEC})
    }
    # exactly what the rule shares, envelope included, as the pipeline decides it
    [raw] = published
    decided = process(raw, source.current.registry, policy, NOW)
    [delivered] = [d for d in decided.decisions if d.delivered]
    assert delivered.recipient == mayor
    assert delivered.rule is not None and delivered.rule.rule_id.startswith("handover-13b-to-")
    message = orjson.loads(feeds[mayor][0])
    assert message == records.feed_message(delivered)
    _, address = Pseudonymiser(site.keys).reidentify(
        Domain(DRUGS, RIEC, reversible=True), pseudonym
    )
    assert set(message["data"]) == {"case", "measure", "municipality", "address", "handed_over_at"}
    assert message["data"]["address"] == address  # plain: the mayor needs it to act (13b)
    assert message["data"]["handed_over_at"] == NOW.date().isoformat()  # generalise:day
    assert message["data"]["case"] == case.id and pseudonym not in feeds[mayor][0].decode()
    # the audit holds the exchange (delivered to the mayor, withheld from everyone else) ...
    exchange = [
        r for _, r in site.workplace.audit.records(limit=100_000)
        if r.get("signal_id") == sent.signal_id
    ]  # fmt: skip
    results = {r["recipient"]: r["result"] for r in exchange}
    assert results[mayor] == "delivered"
    assert all(v != "delivered" for k, v in results.items() if k != mayor)
    assert address not in orjson.dumps(exchange).decode()
    # ... and the workplace's own records: offered, and the other withheld
    actions = [
        (r["action"], r["riec"].get("case"))
        for _, r in site.workplace.audit.records(limit=100_000)
        if r["action"].startswith("riec-handover")
    ]
    assert actions == [("riec-handover", case.id), ("riec-handover-withheld", refused.id)]
    site.engine.dispose()
