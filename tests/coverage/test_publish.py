"""The campaign-team release: allowed by a covenant rule, audited, counts only, no identifiers."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from services.audit.testing import MemoryAuditStore
from services.config import Paths
from services.core.covenant.loader import load_files
from services.core.coverage.facts import Fact
from services.core.regions import ReferenceData
from services.coverage.ingest import ingest
from services.coverage.publish import ReleaseRefused, publish_month
from services.coverage.testing import MemoryCoverageStore, MemoryFeedProducer
from services.coverage.view import municipalities
from tests.router.helpers import NOW

PUBLISHED_AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def covenants():
    loaded = load_files(Paths.from_env({}).covenants)
    return [c.covenant for c in loaded.covenants if c.covenant.in_force(PUBLISHED_AT.date())]


@pytest.fixture(scope="module")
def known():
    return municipalities(ReferenceData.load())


def _publish(store, audit, producer, covenants, known, month="2026-10", **kw):
    return publish_month(
        month=month,
        recipient=kw.pop("recipient", "campagneteam-nh"),
        covenants=covenants,
        municipalities=known,
        store=store,
        audit=audit,
        producer=producer,
        now=PUBLISHED_AT,
        **kw,
    )


def test_the_release_is_audited_then_produced_to_the_campaign_feed(
    loaded, raw, signals, covenants, known
):
    store, audit, producer = MemoryCoverageStore(), MemoryAuditStore(), MemoryFeedProducer()
    ingest(raw, loaded.registry, loaded.policy, store, NOW)
    done = _publish(store, audit, producer, covenants, known)

    record = audit.get(done.exchange_id)
    assert record is not None
    assert (record["action"], record["result"], record["recipient"]) == (
        "disclose",
        "delivered",
        "campagneteam-nh",
    )
    assert record["covenant"]["id"] == "nh-drugsalert"
    assert record["covenant"]["purpose"] == "meldingsbereidheid"
    assert record["covenant"]["article"]
    assert record["object"] == "hub.coverage_aggregate.v1"

    ((topic, key, value),) = producer.sent
    assert topic == "feed.campagneteam-nh" and key == b"2026-10"
    message = orjson.loads(value)
    assert message["exchange_id"] == done.exchange_id == record["feed_exchange_id"]
    assert record["fields"]["envelope.time"] == "release-time"  # not any signal's time
    assert audit.undelivered("campagneteam-nh")[0].partition == 0  # produced, offset noted

    data = message["data"]
    assert {r["municipality"] for r in data["rows"]} == {c for c, _ in known}
    assert set(data["rows"][0]) == {"municipality", "name", "reports", "indicators"}
    for row in data["rows"]:
        for category in ("reports", "indicators"):
            assert row[category] is None or row[category] >= 5
    assert data["totals"]["indicators"] == sum(r["indicators"] or 0 for r in data["rows"])

    # nothing identifying, in the message or the audit record
    text = value.decode() + orjson.dumps(record).decode()
    for signal in signals:
        assert signal["id"] not in text
        for field in ("address", "ean", "bag", "buyer_kvk", "buyer_name", "vehicle_plate"):
            item = signal["data"].get(field)
            if isinstance(item, str) and len(item) > 5:
                assert item not in text


def test_publishing_the_same_numbers_again_is_the_same_exchange(covenants, known):
    store, audit, producer = MemoryCoverageStore(), MemoryAuditStore(), MemoryFeedProducer()
    store.add(
        [Fact("p", f"s{i}", "2026-10", "GM0361", "energy.x.v1", "indicators") for i in range(7)]
    )
    first = _publish(store, audit, producer, covenants, known)
    second = _publish(store, audit, producer, covenants, known)
    assert first.new and not second.new
    assert first.exchange_id == second.exchange_id
    assert audit.count(recipient="campagneteam-nh") == 1
    store.add([Fact("p", "s99", "2026-10", "GM0361", "energy.x.v1", "indicators")])
    third = _publish(store, audit, producer, covenants, known)
    assert third.new and third.exchange_id != first.exchange_id
    assert audit.count(recipient="campagneteam-nh") == 2


def test_without_a_covenant_rule_nothing_is_released(covenants, known):
    store, audit, producer = MemoryCoverageStore(), MemoryAuditStore(), MemoryFeedProducer()
    with pytest.raises(ReleaseRefused, match="`aggregates` entry"):
        _publish(store, audit, producer, covenants, known, recipient="riec-nh")
    with pytest.raises(ReleaseRefused):
        _publish(store, audit, producer, [], known)
    with pytest.raises(ReleaseRefused, match="threshold 4"):
        _publish(store, audit, producer, covenants, known, threshold=4)
    assert producer.sent == [] and audit.count() == 0


def test_a_failed_send_leaves_the_release_audited_and_undelivered(covenants, known):
    store, audit = MemoryCoverageStore(), MemoryAuditStore()
    with pytest.raises(ConnectionError):
        _publish(store, audit, MemoryFeedProducer(fail=True), covenants, known)
    (pending,) = audit.undelivered("campagneteam-nh")
    assert pending.partition is None
    retry = MemoryFeedProducer()
    done = _publish(store, audit, retry, covenants, known)
    assert not done.new and len(retry.sent) == 1


def test_small_counts_never_reach_the_feed(covenants, known):
    store, audit, producer = MemoryCoverageStore(), MemoryAuditStore(), MemoryFeedProducer()
    facts = [Fact("p", f"a{i}", "2026-10", "GM0361", "residents.t.v1", "reports") for i in range(4)]
    facts += [
        Fact("p", f"b{i}", "2026-10", "GM0392", "residents.t.v1", "reports") for i in range(6)
    ]
    store.add(facts)
    _publish(store, audit, producer, covenants, known)
    rows = {r["municipality"]: r for r in orjson.loads(producer.sent[0][2])["data"]["rows"]}
    assert rows["GM0361"]["reports"] is None
    assert rows["GM0392"]["reports"] == 6
    assert orjson.loads(producer.sent[0][2])["data"]["totals"]["reports"] == 6
    assert Counter(store.counts(["2026-10"]))[("GM0361", "2026-10", "reports")] == 4


def _stricter(covenants, min_cell):
    """The covenants with nh-drugsalert's coverage entry asking cells of ``min_cell``."""
    return [
        c.model_copy(
            update={
                "aggregates": [a.model_copy(update={"min_cell": min_cell}) for a in c.aggregates]
            }
        )
        for c in covenants
    ]


def test_the_covenant_min_cell_is_the_default_threshold_and_a_floor(covenants, known):
    store, audit, producer = MemoryCoverageStore(), MemoryAuditStore(), MemoryFeedProducer()
    store.add(
        [Fact("p", f"s{i}", "2026-10", "GM0361", "energy.x.v1", "indicators") for i in range(7)]
    )
    strict = _stricter(covenants, 10)
    with pytest.raises(ReleaseRefused, match="threshold 5 is below the 10"):
        _publish(store, audit, producer, strict, known, threshold=5)
    assert producer.sent == [] and audit.count() == 0
    _publish(store, audit, producer, strict, known)
    ((_, _, value),) = producer.sent
    data = orjson.loads(value)["data"]
    assert data["threshold"] == 10
    [row] = [r for r in data["rows"] if r["municipality"] == "GM0361"]
    assert row["indicators"] is None  # 7 < 10: suppressed, though 5 would have shown it


def test_a_month_in_progress_is_never_published(covenants, known):
    """Its counts grow day by day: two releases of it, days apart, would differ by the signals
    of the days between — a count of 1 or 2 the suppression is there to hide."""
    store, audit, producer = MemoryCoverageStore(), MemoryAuditStore(), MemoryFeedProducer()
    store.add(
        [Fact("p", f"s{n}", "2026-11", "GM0361", "energy.x.v1", "indicators") for n in range(9)]
    )
    with pytest.raises(ReleaseRefused, match="2026-11 is not over yet"):
        _publish(store, audit, producer, covenants, known, month="2026-11")
    with pytest.raises(ReleaseRefused, match="not over yet"):
        _publish(store, audit, producer, covenants, known, month="2027-01")
    assert producer.sent == [] and list(audit.records()) == []
    done = _publish(store, audit, producer, covenants, known, month="2026-10")
    assert done.new and len(producer.sent) == 1
