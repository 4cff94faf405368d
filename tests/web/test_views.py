"""What the workplace shows: subject look-ups, report counts, record detail, integrity —
checked against the records the core made — and that every view is in the access log."""

from __future__ import annotations

import csv
import io
from collections import Counter

from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.web.access_log import AccessLog
from tests.web.conftest import Hub, csrf_of, planted_address

DRUGS = "drugslocaties-nh"


def _of(hub: Hub, covenant: str) -> list[dict]:
    return [r for r in hub.records if (r["covenant"] or {}).get("id") == covenant]


def test_subject_look_up_finds_exactly_the_records_of_that_identifier(as_user, hub: Hub):
    typed, canonical = planted_address(hub)
    pseudonyms = set(Pseudonymiser(hub.keys).all_pseudonyms(INTERNAL, "address", canonical))
    expected = [r for r in hub.records if pseudonyms & set(r["subjects"].values())]
    signals = {
        s["id"]
        for s in hub.signals
        if isinstance(s.get("data"), dict) and s["data"].get("address") == typed
    }
    client = as_user("admin")
    response = client.post(
        "/api/subjects",
        json={"kind": "address", "identifier": f"  {typed.lower()} "},
        headers={"x-csrf-token": csrf_of(client)},
    )
    found = response.json()["records"]
    assert sorted(r["record_id"] for r in found) == sorted(r["record_id"] for r in expected)
    assert signals <= {r["signal_id"] for r in expected}
    times = [r["time"] for r in found]
    assert times == sorted(times)
    delivered = [r for r in found if r["result"] == "delivered"]
    assert delivered and all(r["article"] and r["fields"] for r in delivered)


def test_subject_look_up_page_lists_disclosures_without_echoing_the_identifier(as_user, hub):
    typed, canonical = planted_address(hub)
    client = as_user("admin")
    page = client.post(
        "/subjects", data={"kind": "address", "identifier": typed, "csrf": csrf_of(client)}
    )
    assert page.status_code == 200
    assert "records about this address" in page.text
    assert typed not in page.text and canonical not in page.text
    bad = client.post(
        "/subjects", data={"kind": "ean", "identifier": "12", "csrf": csrf_of(client)}
    )
    assert bad.status_code == 400
    assert "not a valid ean" in bad.text


def test_report_counts_equal_direct_counts(as_user, hub: Hub):
    records = _of(hub, DRUGS)
    report = as_user("admin").get(f"/api/report?covenant={DRUGS}").json()
    assert report["total"] == len(records)
    assert report["by_rule"] == dict(Counter(r["covenant"]["rule"] for r in records))
    assert report["by_recipient"] == dict(Counter(r["recipient"] for r in records))
    assert report["by_result"] == dict(Counter(r["result"] for r in records))
    assert report["by_month"] == dict(Counter(r["timestamp"][:7] for r in records))
    reasons = Counter(r["reason"] for r in records if r["result"] == "withheld")
    assert [(x["reason"], x["count"]) for x in report["withheld_reasons"]] == sorted(
        reasons.items(), key=lambda p: (-p[1], p[0])
    )[:10]


def test_report_for_a_period_counts_only_that_period(as_user, hub: Hub):
    records = [r for r in _of(hub, DRUGS) if r["timestamp"][:7] == "2026-10"]
    client = as_user("admin")
    report = client.get(f"/api/report?covenant={DRUGS}&from=2026-10-01&to=2026-10-31").json()
    assert report["total"] == len(records)
    assert report["by_month"] == {"2026-10": len(records)}


def test_report_page_draws_a_chart_and_exports_csv(as_user, hub: Hub):
    client = as_user("manager")
    page = client.get(f"/report?covenant={DRUGS}")
    assert page.status_code == 200
    assert "<svg" in page.text and "<rect" in page.text
    download = client.get(f"/report.csv?covenant={DRUGS}")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    totals = {r["key"]: int(r["count"]) for r in rows if r["section"] == "result"}
    assert sum(totals.values()) == len(_of(hub, DRUGS))


def test_record_detail_shows_the_decision_and_its_chain_position(as_user, hub: Hub):
    seq, record = next((i, r) for i, r in enumerate(hub.records, 1) if r["result"] == "delivered")
    client = as_user("admin")
    detail = client.get(f"/api/exchanges/{record['record_id']}").json()
    assert detail["seq"] == seq and detail["prev_seq"] == seq - 1
    assert len(detail["chain_hash"]) == 64
    page = client.get(f"/exchanges/{seq}").text
    assert record["record_id"] in page and detail["chain_hash"] in page
    assert record["covenant"]["article"] in page


def test_search_filters_and_pages(as_user, hub: Hub):
    client = as_user("admin")
    first = client.get("/api/exchanges?result=withheld&recipient=riec-nh").json()
    expected = [r for r in hub.records if r["result"] == "withheld" and r["recipient"] == "riec-nh"]
    seen = list(first["records"])
    cursor = first["next_cursor"]
    while cursor:
        more = client.get(f"/api/exchanges?result=withheld&recipient=riec-nh&cursor={cursor}")
        seen += more.json()["records"]
        cursor = more.json()["next_cursor"]
    assert sorted(r["record_id"] for r in seen) == sorted(r["record_id"] for r in expected)
    seqs = [r["seq"] for r in seen]
    assert seqs == sorted(seqs, reverse=True)
    page = client.get("/exchanges?result=withheld&recipient=riec-nh")
    assert "Older records" in page.text


def test_every_view_of_audit_data_is_in_the_access_log(as_user, hub: Hub):
    typed, canonical = planted_address(hub)
    log = AccessLog(hub.engine)
    before = len(log.entries(user="liander", limit=500))
    client = as_user("liander")
    client.get("/exchanges?result=withheld")
    client.get("/api/exchanges/1")
    client.get(f"/report?covenant={DRUGS}")
    client.get("/recipients?recipient=riec-nh")
    client.get("/integrity")
    client.post(
        "/api/subjects",
        json={"kind": "address", "identifier": typed},
        headers={"x-csrf-token": csrf_of(client)},
    )
    everything = log.entries(user="liander", limit=500)
    entries = everything[: len(everything) - before]
    assert len(entries) == 7  # csrf_of reads /integrity once more
    routes = [e.route for e in reversed(entries)]
    assert routes[:3] == ["exchanges", "record", "report"]
    assert {"recipient", "integrity", "subject"} <= set(routes)
    search = next(e for e in entries if e.route == "exchanges")
    assert search.detail["result"] == "withheld"
    subject = next(e for e in entries if e.route == "subject")
    assert subject.detail["kind"] == "address" and subject.detail["pseudonyms"] >= 1
    text = repr([e.detail for e in entries])
    assert typed not in text and canonical not in text
    assert not any(
        p.startswith("p") and "." in p for d in entries for p in map(str, d.detail.values())
    )


def test_the_result_filter_offers_every_result_the_hub_writes(as_user):
    from datetime import UTC, datetime

    from services.audit.retention import PurgeCommitment, purge_record
    from services.reid.workflow import STEP_RESULTS
    from services.web.forms import RESULTS

    moment = datetime(2026, 11, 22, tzinfo=UTC)
    purge = purge_record(PurgeCommitment(9, b"\0" * 32, 9, moment, moment, moment, "k1", b"s"))
    written = {"delivered", "withheld", "rejected", purge["result"], *STEP_RESULTS.values()}
    assert written <= set(RESULTS)
    client = as_user("admin")
    page = client.get("/exchanges").text
    for result in written:
        assert f'<option value="{result}"' in page
        assert client.get(f"/api/exchanges?result={result}").status_code == 200
    assert client.get("/api/exchanges?result=exploded").status_code == 400
