"""A failed audit write never leaves a workplace change without its record: the record is
staged with the change and written by a later flush — exactly once, under the same id — and a
store that keeps failing is visible in the log, without identifiers or text."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.audit.errors import AuditStoreError
from services.audit.model import AuditStore, OutboxEntry
from services.metrics.riec import RiecAuditMetrics
from services.metrics.testing import value
from services.riec import audit_outbox
from services.riec.model import ItemState, QueueFilters
from tests.riec.helpers import Site, plan, user


class FailingAudit:
    """The site's audit store, refusing the next ``failures`` writes."""

    def __init__(self, store: AuditStore, failures: int) -> None:
        self.store = store
        self.failures = failures

    def record(self, audit: Sequence[Mapping[str, Any]], outbox: Sequence[OutboxEntry]) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise AuditStoreError("audit database unreachable")
        return self.store.record(audit, outbox)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def times_stored(site: Site, record_id: str) -> int:
    store = site.workplace.audit
    return sum(1 for _, r in store.records(limit=100_000) if r["record_id"] == record_id)


def fail(site: Site, failures: int) -> FailingAudit:
    failing = FailingAudit(site.workplace.audit, failures)
    site.workplace.audit = failing  # type: ignore[assignment]
    return failing


def test_a_step_whose_audit_write_fails_is_recorded_by_the_next_flush_once(
    site: Site, caplog: pytest.LogCaptureFixture
):
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(state=ItemState.NEW), limit=1)[0]
    store = site.workplace.audit
    fail(site, 1)
    with caplog.at_level(logging.WARNING, logger="schakel.riec.audit"):
        taken = site.workplace.take(ana, item.id)
    assert taken.state is ItemState.ASSESSING  # the change stands ...
    [event] = site.workplace.history(item.id)
    assert store.get(event.record_id) is None  # ... its record not yet in the store ...
    assert audit_outbox.pending(site.engine) == 1  # ... but staged, and the failure visible
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "1 audit records pending" in logged and "AuditStoreError" in logged
    assert item.id not in logged and "ana" not in logged and event.record_id not in logged
    dismissed = site.workplace.dismiss(ana, item.id, "checked")  # the next action flushes
    assert dismissed.state is ItemState.DISMISSED
    for step in site.workplace.history(item.id):
        assert times_stored(site, step.record_id) == 1, step.step
    assert store.get(event.record_id)["action"] == "riec-take"  # type: ignore[index]
    assert audit_outbox.pending(site.engine) == 0


def test_case_entries_and_barriers_wait_for_a_failing_store_and_are_written_once(site: Site):
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(state=ItemState.NEW), limit=1)[0]
    case = site.cases.open(ana, item.id, "barn")
    failing = fail(site, 1_000)  # down for good, until repaired
    site.cases.note(ana, case.id, "van at night")
    site.cases.outcome(ana, case.id, "finding", "plantation found")
    barrier = plan(site).raise_barrier(
        ana, model="cannabis", step="cannabis.acquire_location", partner="pwn", kind="check",
        municipality="GM0361", description="meter checks", since=date(2026, 1, 1),
    )  # fmt: skip
    entries = site.cases.entries(case.id)
    assert [e.step for e in entries][-2:] == ["note", "outcome"]
    assert site.cases.get(ana, case.id).outcome == "finding"
    assert barrier.id > 0
    assert audit_outbox.pending(site.engine) == 3
    assert site.workplace.flush_audit().failure == "AuditStoreError"
    failing.failures = 0  # repaired
    # a flush that died after the store took a record but before un-staging it
    staged = [e.record_id for e in entries[-2:]]
    with site.engine.connect() as connection:
        first = connection.execute(
            audit_outbox.riec_audit_pending.select().order_by(audit_outbox.riec_audit_pending.c.id)
        ).first()
    assert first is not None
    failing.store.record([orjson.loads(first.record)], [])
    flushed = site.workplace.flush_audit()  # what the reader's loop does
    assert (flushed.written, flushed.pending, flushed.failure) == (3, 0, None)
    for record_id in staged:
        assert times_stored(site, record_id) == 1
    barriers = [r for _, r in failing.store.records(limit=100_000) if r["action"] == "riec-barrier"]
    assert [r["riec"]["barrier"] for r in barriers] == [barrier.id]


def test_waiting_records_are_a_metric_and_on_the_integrity_page(site: Site):
    """Records the store keeps refusing are visible where operators look — the web's
    ``/metrics`` (how many, since when, refused flushes) and the integrity page — by count,
    never by an item, case or person."""
    from tests.riec.test_plan import signed_in

    client = signed_in(site, "drugs-officer")
    registry = client.app.state.metrics_registry  # type: ignore[attr-defined]
    assert value(registry, "schakel_riec_audit_pending") == 0
    assert "riec-audit-waiting" not in client.get("/integrity").text
    ana = user(site, "ana")
    item = site.workplace.queue(ana, QueueFilters(state=ItemState.NEW), limit=1)[0]
    fail(site, 1_000)
    site.workplace.take(ana, item.id)
    site.workplace.dismiss(ana, item.id, "checked the meter")  # refused again: two wait
    assert value(registry, "schakel_riec_audit_pending") == 2
    failures = {"error": "audit_store_error"}
    assert value(registry, "schakel_riec_audit_flush_failures_total", failures) == 2
    exposition = client.get("/metrics").text
    assert "schakel_riec_audit_pending 2.0" in exposition
    page = client.get("/integrity").text
    assert 'id="riec-audit-waiting"' in page and "2 audit records of RIEC workplace" in page
    assert "2026-11-01 12:00:00 UTC" in page  # the oldest's action time (the site's clock)
    api = client.get("/api/integrity").json()["riec_audit_waiting"]
    assert api == {"records": 2, "oldest": "2026-11-01T12:00:00+00:00"}
    named = [item.id, "checked the meter", *(e.record_id for e in site.workplace.history(item.id))]
    for shown in (exposition, page, str(api)):
        assert not [n for n in named if n in shown]
    site.workplace.audit = site.workplace.audit.store  # type: ignore[attr-defined]
    site.workplace.flush_audit()
    assert value(registry, "schakel_riec_audit_pending") == 0
    assert "riec-audit-waiting" not in client.get("/integrity").text


def test_the_oldest_waiting_records_age():
    registry = CollectorRegistry()
    since = datetime(2026, 11, 1, 12, tzinfo=UTC)
    metrics = RiecAuditMetrics(registry, lambda: (3, since), wall=lambda: since.timestamp() + 400.0)
    assert value(registry, "schakel_riec_audit_pending") == 3
    assert value(registry, "schakel_riec_audit_pending_oldest_seconds") == 400.0
    metrics.failed("OperationalError")
    error = {"error": "operational_error"}
    assert value(registry, "schakel_riec_audit_flush_failures_total", error) == 1
    metrics.failed("Error 1811AB12")  # never an identifier as a label value
    assert value(registry, "schakel_riec_audit_flush_failures_total", {"error": "other"}) == 1
    empty = CollectorRegistry()
    RiecAuditMetrics(empty, lambda: (0, None))
    assert value(empty, "schakel_riec_audit_pending_oldest_seconds") == 0
