"""Chaos soak: signals through real router workers while workers, the audit database and the
broker fail; afterwards nothing is lost, doubled, unaudited or leaked.

Set-up as ``schakel up`` runs it (tests/soak/hub.py): an embedded broker, the shipped
covenants, a SQLite audit database and two supervised worker processes (``python -m
services.cli router``). The input is the demo mix with broken lines, crafted edge cases and
signals carrying canary identifiers (tests/soak/traffic.py). It is published in three phases
while

1. router workers are killed with SIGKILL (the supervisor restarts them);
2. the audit database is locked for longer than the workers' busy timeout, so their writes
   fail and they restart and retry (the database "connection restart");
3. the broker is restarted once; the hub's maintenance recreates what it lost and
   re-delivers the outbox.

Then the checks are printed as a table and asserted. ``make test`` runs it with
``SCHAKEL_SOAK_SIGNALS`` unset (5,000 signals, one fault of each kind); ``make soak`` with
100,000 signals and a kill every ~10,000.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from services.broker.embedded import EmbeddedBroker
from services.database.engine import DEFAULT_BUSY_TIMEOUT_MS
from services.router.topics import DEAD_LETTER, feed_topic
from tests.kafka_fixtures import selected_brokers
from tests.soak.hub import (
    SoakHub,
    db_outage,
    expectations,
    kill_a_worker,
    publish,
    restart_broker,
    start_hub,
)
from tests.soak.observe import (
    Scan,
    Supervisor,
    database_cells,
    dead_letter_texts,
    post_mortem,
    read_topics,
)
from tests.soak.observe import wait_for as wait
from tests.soak.traffic import CANARY_PATTERN, Canaries, Published, build

SIGNALS = int(os.environ.get("SCHAKEL_SOAK_SIGNALS", "5000"))
KILLS = max(1, SIGNALS // 10_000)
WORKERS = 2
PEAK_RSS_MB = 700.0
GROWTH_MB = 150.0
PHASE_TIMEOUT_S = max(150.0, SIGNALS / 20)

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(max(600, SIGNALS // 10))]

Figure = tuple[str, str, bool]


def run_faults(
    hub: SoakHub, supervisor: Supervisor, records: list[Published], canaries: Canaries
) -> tuple[set[str], set[tuple[str, str]], list[Figure], list[str]]:
    """Publish in three parts while the faults happen; the expected record ids, the allowed
    (canary, recipient) disclosures, what happened, and each worker's metrics at the end.

    The kill and the database outage overlap (the killed worker comes back into the outage),
    which keeps the short form short; the broker restart comes alone, with everything before
    it audited, as a restart of a memory-only broker loses unread signals.
    """
    n = len(records)
    parts = [records[: n * 4 // 10], records[n * 4 // 10 : n * 7 // 10], records[n * 7 // 10 :]]
    expected_parts = [expectations(hub, part, canaries) for part in parts]
    expected = set().union(*(ids for ids, _ in expected_parts))
    kept = set().union(*(allowed for _, allowed in expected_parts))
    rng = random.Random(SIGNALS)
    timings: list[Figure] = []

    began = time.monotonic()
    publish(hub.settings, parts[0])
    first = expected_parts[0][0]
    for k in range(KILLS):
        share = len(first) * (k + 1) // (KILLS + 1)
        wait(lambda s=share: len(hub.audit_rows()) >= s, PHASE_TIMEOUT_S, "workers mid-stream")
        kill_a_worker(supervisor, rng)
    publish(hub.settings, parts[1])
    wait(lambda: len(supervisor.pids()) == WORKERS, 60, "every worker back before the outage")
    restarts = hub.restarts()
    held = db_outage(
        hub.db,
        DEFAULT_BUSY_TIMEOUT_MS / 1000 + 2,
        until=lambda: hub.restarts() > restarts or hub.exited() > 0,
        longest=90,
    )
    wait(hub.audited(first | expected_parts[1][0]), PHASE_TIMEOUT_S, "parts 1-2 audited")
    # a worker whose write failed may still wait for its restart (the others audited all)
    failed_writes = hub.restarts() + hub.exited() - restarts
    timings.append(
        (
            f"parts 1-2: {len(parts[0]) + len(parts[1]):,} records, {KILLS} SIGKILL(s), db outage",
            f"{time.monotonic() - began:.0f} s",
            True,
        )
    )
    timings.append(
        (
            "audit db locked (s) / workers restarted after failed writes",
            f"{held:.0f} / {failed_writes}",
            failed_writes > 0,
        )
    )

    began = time.monotonic()
    maintenance = hub.maintenance()
    wait(hub.produced, 60, "produced offsets recorded")
    recreated, redelivered = restart_broker(hub, maintenance)
    publish(hub.settings, parts[2])
    wait(hub.audited(expected), PHASE_TIMEOUT_S, "every decision audited")
    wait(hub.produced, 60, "every delivery produced")
    maintenance.tick()
    timings.append(
        (
            f"part 3: {len(parts[2]):,} records, broker restart",
            f"{time.monotonic() - began:.0f} s",
            True,
        )
    )
    timings.append(
        (
            f"broker restart ({hub.broker.name}): topics recreated, re-delivered",
            f"{recreated}, {redelivered:,}",
            recreated > 0 or hub.broker.persistent,
        )
    )
    metrics = [httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=10).text for p in hub.ports]
    return expected, kept, timings, metrics


def check_records(hub: SoakHub, expected: set[str], feeds: dict[str, list[bytes]]) -> list[Figure]:
    """Exactly one decision per applicable recipient; every delivery in its feed at least once,
    duplicates identical; no feed message without an audit record; the chain verifies."""
    rows = hub.audit_rows()
    ids = [row[0] for row in rows]
    delivered = {(row[0], row[2]) for row in rows if row[1] == "delivered"}
    rejected = sum(1 for row in rows if row[1] == "rejected")
    record_of = hub.feed_ids()  # recipients get a keyed exchange id; the audit record has it
    seen: dict[tuple[str, str], set[bytes]] = defaultdict(set)
    for recipient in hub.recipients:
        for value in feeds[feed_topic(recipient)]:
            given = orjson.loads(value)["exchange_id"]
            seen[(record_of.get(given, f"unaudited:{given}"), recipient)].add(value)
    messages = sum(len(feeds[feed_topic(r)]) for r in hub.recipients)
    missing, unaudited = delivered - set(seen), set(seen) - delivered
    differing = [key for key, values in seen.items() if len(values) > 1]
    verified = subprocess.run(
        [sys.executable, "-m", "services.cli", "audit", "verify", "--json"],
        env={**os.environ, **hub.env},
        capture_output=True,
        check=False,
        timeout=600,
    )
    report = orjson.loads(verified.stdout) if verified.stdout.strip().startswith(b"{") else {}
    return [
        ("audit records / expected", f"{len(ids):,} / {len(expected):,}", set(ids) == expected),
        ("duplicate audit records", f"{len(ids) - len(set(ids))}", len(ids) == len(set(ids))),
        (
            "delivered decisions / found in feeds",
            f"{len(delivered):,} / {len(delivered) - len(missing):,}",
            not missing,
        ),
        ("feed messages incl. duplicates", f"{messages:,}", messages >= len(delivered)),
        ("feed messages without an audit record", f"{len(unaudited)}", not unaudited),
        ("duplicates differing from the first copy", f"{len(differing)}", not differing),
        # a memory-only broker's restart loses the dead letters before it (they are not in the
        # outbox); their rejection records stay in the audit
        (
            "rejections audited / dead letters in the topic",
            f"{rejected:,} / {len(feeds[DEAD_LETTER]):,}",
            rejected > 0 and bool(feeds[DEAD_LETTER]),
        ),
        ("schakel audit verify", "ok" if report.get("ok") else "FAILED", report.get("ok") is True),
    ]


def check_canaries(
    hub: SoakHub,
    records: list[Published],
    canaries: Canaries,
    kept: set[tuple[str, str]],
    feeds: dict[str, list[bytes]],
    metrics: list[str],
    logs: Path,
) -> tuple[list[Figure], dict[str, int]]:
    """Every canary is in the input (the scanner works), and in the output only where a rule
    keeps that field for that recipient."""
    probe = Scan(canaries.forms, set(), CANARY_PATTERN)
    for record in records:
        probe.text("input", record.value.decode("utf-8", "replace"))
    found = {hit.split(": ", 1)[1] for hit in probe.hits}
    scan = Scan(canaries.forms, kept, CANARY_PATTERN)
    for recipient in hub.recipients:
        for value in feeds[feed_topic(recipient)]:
            scan.text("feed", value.decode("utf-8", "replace"), recipient)
    for text in dead_letter_texts(feeds[DEAD_LETTER]):
        scan.text("dead letters", text)
    for table, recipient, text in database_cells(hub.db):
        scan.text(f"audit db {table}", text, recipient if table == "feed_outbox" else None)
    for log in sorted(logs.rglob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            scan.text("logs", line)
    for text in metrics:
        scan.text("metrics", text)
    hits = sum(scan.hits.values())
    return [
        (
            "canaries planted / found in the input",
            f"{len(canaries.forms)} / {len(found)}",
            found == set(canaries.forms),
        ),
        (
            "texts scanned (feeds, dead letters, db cells, log lines, metrics)",
            f"{sum(scan.scanned.values()):,}",
            True,
        ),
        ("canary hits outside a `keep` rule", f"{hits}", hits == 0),
        ("canary disclosures allowed by `keep`", f"{scan.allowed_hits}", True),
    ], dict(scan.hits)


def test_soak(broker_factory: Callable[..., EmbeddedBroker], tmp_path: Path) -> None:
    started = time.monotonic()
    hub = start_hub(broker_factory(selected_brokers()[0]), tmp_path)
    records, canaries = build(SIGNALS, hub.loaded.registry, hub.policy.suppliers)
    supervisor = hub.start_workers(WORKERS, tmp_path / "logs")
    try:
        expected, kept, figures, metrics = run_faults(hub, supervisor, records, canaries)
    except AssertionError:
        every = expectations(hub, records, canaries)[0]
        missing = len(every - {row[0] for row in hub.audit_rows()})
        print(post_mortem(supervisor, tmp_path / "logs", missing))
        raise
    finally:
        supervisor.stop()
        hub.stop()
    figures += [
        ("worker restarts in all", f"{hub.restarts()}", hub.restarts() >= KILLS + 1),
        (
            "peak worker RSS (MiB)",
            f"{supervisor.peak_rss():.0f}",
            0 < supervisor.peak_rss() <= PEAK_RSS_MB,
        ),
        (
            "worker RSS growth (MiB)",
            f"{supervisor.growth_mb():.0f}",
            supervisor.growth_mb() <= GROWTH_MB,
        ),
    ]
    feeds = read_topics(hub.settings, [feed_topic(r) for r in hub.recipients] + [DEAD_LETTER])
    figures += check_records(hub, expected, feeds)
    leaks, hits = check_canaries(hub, records, canaries, kept, feeds, metrics, tmp_path / "logs")
    figures += leaks
    hub.store.close()

    print(
        f"\nchaos soak: {len(records):,} records ({SIGNALS:,} demo signals, edge cases, "
        f"{len(canaries.forms)} canaries), {WORKERS} workers, broker {hub.broker.name}, "
        f"{time.monotonic() - started:.0f} s"
    )
    width = max(len(name) for name, _, _ in figures)
    for name, value, ok in figures:
        print(f"  {name:<{width}}  {value:>18}  {'ok' if ok else 'FAIL'}")
    if hits:
        print("  canary hits:", dict(sorted(hits.items())[:20]))
    failed = [name for name, _, ok in figures if not ok]
    assert not failed, f"soak checks failed: {failed} (supervisor: {supervisor.events[-10:]})"
