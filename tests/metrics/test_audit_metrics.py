"""Checkpoint age and verification outcome from a real (SQLite) hash-chained store."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from services.audit.checkpoint import KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.reading import chain_records
from services.audit.store import SqlAuditStore
from services.audit.verify import verify
from services.core import records
from services.core.pipeline import process
from services.database.engine import make_engine
from services.database.tables.audit import audit_records
from services.keys.testing import MemoryKeyStore
from services.metrics.audit import AuditMetrics
from services.metrics.testing import value
from tests.router.helpers import NOW, lines, policy_source, traffic


@pytest.fixture
def store(tmp_path):
    keys = MemoryKeyStore.for_tests()
    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    made = SqlAuditStore(engine, Checkpointer(KeyStoreSigner(keys), clock=lambda: NOW))
    made.create_schema()
    current = policy_source(keys=keys).current
    audit = []
    for value_ in lines(traffic(60, seed=3)):
        outcome = process(value_, current.registry, current.policy, NOW)
        audit += [records.audit_record(d, actor="router") for d in outcome.decisions]
    made.record(audit[:50], [])  # the first write signs a checkpoint
    made.record(audit[50:], [])  # these are not yet under one
    yield made, engine, keys, len(audit)
    made.close()
    engine.dispose()


def test_checkpoint_age_and_unsigned_records(store):
    _, engine, _, written = store
    registry = CollectorRegistry()
    wall = NOW.timestamp() + 90
    AuditMetrics(engine, wall=lambda: wall).register(registry)
    stamp = value(registry, "schakel_audit_last_checkpoint_timestamp_seconds")
    assert stamp == NOW.replace(microsecond=0).timestamp()
    assert value(registry, "schakel_audit_checkpoint_age_seconds") == pytest.approx(90, abs=1)
    assert value(registry, "schakel_audit_unsigned_records") == written - 50
    assert value(registry, "schakel_audit_verification_ok") is None  # no verify function


def test_verification_result_and_a_tampered_record(store):
    audit_store, engine, keys, _ = store
    public = {keys.signing_key().key_id: keys.signing_key().public_key_bytes()}

    def check():
        return verify(chain_records(audit_store), audit_store.checkpoints(), public)

    registry = CollectorRegistry()
    metrics = AuditMetrics(engine, verify=check, verify_every_s=3600).register(registry)
    first = metrics.run_verification()
    assert first is not None and first.ok
    assert value(registry, "schakel_audit_verification_ok") == 1.0
    assert value(registry, "schakel_audit_verification_findings") == 0.0
    with engine.begin() as connection:
        body = (
            connection.execute(audit_records.select().where(audit_records.c.seq == 3))
            .one()
            ._mapping["body"]
        )
        edited = orjson.loads(body) | {"result": "delivered", "recipient": "someone-else"}
        connection.execute(
            update(audit_records)
            .where(audit_records.c.seq == 3)
            .values(body=orjson.dumps(edited).decode())
        )
    second = metrics.run_verification()
    assert second is not None and not second.ok
    assert value(registry, "schakel_audit_verification_ok") == 0.0
    assert value(registry, "schakel_audit_verification_findings") >= 1


def test_a_scrape_starts_a_due_verification_in_the_background(store):
    _, engine, _, _ = store
    calls = []

    def check():
        calls.append(datetime.now(UTC))
        raise RuntimeError("database went away")

    registry = CollectorRegistry()
    metrics = AuditMetrics(engine, verify=check, verify_every_s=3600).register(registry)
    registry.get_sample_value("schakel_audit_unsigned_records")  # a scrape
    assert metrics._running is not None
    metrics._running.join(10)
    assert len(calls) == 1
    assert value(registry, "schakel_audit_verification_ok") == 0.0  # could not run = failed
    registry.get_sample_value("schakel_audit_unsigned_records")  # not due again for an hour
    assert len(calls) == 1
