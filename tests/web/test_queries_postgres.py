"""The audit queries give the same answers on PostgreSQL as on SQLite (dialect-neutral SQL;
the JSON reason and the month buckets are where dialects differ)."""

from __future__ import annotations

from services.audit import queries
from services.audit.queries import Filters, Period, Scope
from services.audit.report import covenant_report
from services.audit.store import SqlAuditStore
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.database.engine import make_engine
from tests.web.conftest import Hub, planted_address


def test_queries_agree_between_sqlite_and_postgresql(hub: Hub, postgres_url: str):
    store = SqlAuditStore.open(postgres_url)
    store.record(hub.records, [])
    store.close()
    postgres = make_engine(postgres_url)
    try:
        scoped = Scope(covenants=frozenset({"schimmige-schuren", "nh-drugsalert"}))
        for engine_scope in (Scope.everything(), scoped):
            for filters in (Filters(), Filters(result="withheld", recipient="riec-nh")):
                a = queries.search(hub.engine, filters, engine_scope, limit=500)
                b = queries.search(postgres, filters, engine_scope, limit=500)
                assert [e.record_id for e in a.entries] == [e.record_id for e in b.entries]
                assert [e.timestamp for e in a.entries] == [e.timestamp for e in b.entries]
            period = Period(*[queries.utc(e.timestamp) for e in (a.entries[-1], a.entries[0])])
            for covenant in ("drugslocaties-nh", "schimmige-schuren"):
                for asked in (Period(), period):
                    left = covenant_report(hub.engine, covenant, asked, engine_scope).to_json()
                    right = covenant_report(postgres, covenant, asked, engine_scope).to_json()
                    assert left == right
            assert queries.covenants(hub.engine, engine_scope) == queries.covenants(
                postgres, engine_scope
            )
        _, canonical = planted_address(hub)
        pseudonyms = Pseudonymiser(hub.keys).all_pseudonyms(INTERNAL, "address", canonical)
        a_subject = queries.subject_lookup(hub.engine, pseudonyms, Scope.everything())
        b_subject = queries.subject_lookup(postgres, pseudonyms, Scope.everything())
        assert [e.record_id for e in a_subject] == [e.record_id for e in b_subject] != []
        detail = queries.record(postgres, a_subject[0].record_id, Scope.everything())
        assert detail is not None and len(detail.chain_hash) == 64
    finally:
        postgres.dispose()
