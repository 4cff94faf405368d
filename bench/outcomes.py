"""Outcome matching: ms per outcome against 1,000,000 signals in the matching index.

Hub figure: per outcome, what the outcomes worker does once the outcome is stored — find every
signal at its locations in the year before it (the index in SQLite, ``outcome_signal_locations``
range scans), read the approvals, and decide a return or a withholding for each pair under the
shipped covenants (``decide_returns``: rules, approval, payload, audit record, feed message).
Baseline, same run, same database: one primary-key point query per outcome (the least any
SQL-backed matching pays). Target: <= 10 ms per outcome.

Before printing a figure the bench checks that every timed outcome matched exactly the signals
the generator put at its locations in its window (computed independently, from the formula
that placed them), that every pair was decided once (one audit record each), that something
was returned, and that each return answers a signal of its own recipient. The counts checked
are in the result's ``checked`` (outcomes whose match was right, matches, audit records,
deliveries; bench/verify.py); a wrong match refuses the figure (exit status 3, nothing on
stdout).

    .venv/bin/python bench/outcomes.py [--signals 1000000] [--outcomes 1000] [--json]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from bench.verify import Counts, Refused, refusing  # noqa: E402
from bench.verify import check as check_counts  # noqa: E402
from services.config import Paths, load_policy  # noqa: E402
from services.core.decision import RuleRef  # noqa: E402
from services.core.outcomes.entries import (  # noqa: E402
    ApprovalEntry,
    Entries,
    OutcomeEntry,
    SignalEntry,
)
from services.core.outcomes.returns import (  # noqa: E402
    ReturnBatch,
    decide_returns,
    match_window,
)
from services.core.policy import Policy  # noqa: E402
from services.core.pseudonyms import Pseudonymiser  # noqa: E402
from services.database.engine import make_engine  # noqa: E402
from services.keys.testing import MemoryKeyStore  # noqa: E402
from services.outcomes.store import SqlOutcomeStore  # noqa: E402

TARGET_MS = 10.0
BENCH_QUICK_ARGS = ["--signals", "20000", "--outcomes", "200"]
BENCH_ARGS: list[str] = []
T0 = datetime(2025, 11, 1, tzinfo=UTC)
YEAR = timedelta(days=365)
NOW = T0 + YEAR + timedelta(days=30)
CHUNK = 50_000
SOURCES = (
    ("liander", "energy", "energy.consumption_anomaly.v1"),
    ("pwn", "water", "water.abnormal_use.v1"),
    ("woonwaard", "housing", "housing.observation.v1"),
    ("meld-misdaad-anoniem", "residents", "residents.anonymous_tip.v1"),
)


@dataclass(frozen=True)
class Layout:
    """Where the generator puts signal ``n``: a pure formula, so the bench can check matches
    without keeping a million signals in memory."""

    signals: int
    locations: int

    def location(self, n: int) -> str:
        return f"p1.bench{n % self.locations:024d}"

    def second(self, n: int) -> str | None:
        """Every third signal also names an EAN-like second identifier of its location."""
        return f"p1.benchean{n % self.locations:021d}" if n % 3 == 0 else None

    def time(self, n: int) -> datetime:
        return T0 + timedelta(seconds=(n * 7_919) % int(YEAR.total_seconds()))

    def source(self, n: int) -> tuple[str, str, str]:
        return SOURCES[(n // self.locations) % len(SOURCES)]

    def at(self, location: int) -> range:
        """The signals at location index ``location``."""
        return range(location, self.signals, self.locations)


RECEIVED = NOW + timedelta(seconds=1)
"""When the hub received the outcomes and approvals: after every signal (which it received
at their own time)."""


def entry(layout: Layout, n: int) -> SignalEntry:
    source, kind, signal_type = layout.source(n)
    when = layout.time(n)
    names = [layout.location(n)]
    second = layout.second(n)
    if second is not None:
        names.append(second)
    return SignalEntry(
        source=source,
        signal_id=f"{source}-{n:08d}",
        signal_type=signal_type,
        time=when,
        partner_kind=kind,
        municipality="GM0361",
        strength=0.9,
        stackable=True,
        thread=None,
        rules=("drugslocaties-nh@2025.1/energy-anomaly-to-riec",),
        keep_until=when + YEAR * 2,
        locations=tuple(names),
    )


def fill(store: SqlOutcomeStore, layout: Layout) -> float:
    started = time.perf_counter()
    for start in range(0, layout.signals, CHUNK):
        stop = min(start + CHUNK, layout.signals)
        store.write(Entries(signals=[entry(layout, n) for n in range(start, stop)]))
    return time.perf_counter() - started


def outcome(layout: Layout, index: int, location: int) -> OutcomeEntry:
    return OutcomeEntry(
        source="politie-nh",
        signal_id=f"politie-nh-{index:06d}",
        signal_type="police.location_finding.v1",
        outcome_class="finding",
        time=NOW - timedelta(days=index % 60),
        municipality="GM0361",
        data={"finding": "cannabis_grow", "dismantled": True, "meter_bypassed": True,
              "water_bypassed": False, "found_at": NOW.isoformat()},
        leaves=("address", "municipality", "finding", "found_at", "dismantled"),
        subjects={"address": layout.location(location)},
        rules=(
            "drugslocaties-nh@2025.1/finding-back-to-grid-operator",
            "drugslocaties-nh@2025.1/finding-back-to-water-company",
            "drugslocaties-nh@2025.1/finding-back-to-housing",
        ),
        basis=RuleRef("drugslocaties-nh", "2025.1", "finding-back-to-grid-operator",
                      "art. 10 lid 2", "terugmelding"),
        keep_until=NOW + YEAR * 2,
        received=RECEIVED,  # the hub received every outcome after every signal
        locations=(layout.location(location), f"p1.benchean{location:021d}"),
    )  # fmt: skip


def expected(layout: Layout, location: int, found: OutcomeEntry, window: timedelta) -> set[str]:
    """The signal ids at ``location`` in the window before the outcome, from the formula."""
    return {
        entry(layout, n).signal_id
        for n in layout.at(location)
        if found.time - window <= layout.time(n) <= found.time
    }


def policy() -> Policy:
    paths = Paths.from_env({})
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()), today=NOW.date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    return loaded.policy


@dataclass
class Timed:
    hub_ms: list[float]
    base_ms: list[float]
    wrong: list[str]
    decisions: int
    delivered: int
    fill_s: float
    right: int = 0
    """Outcomes whose matching was checked and found right."""
    matches: int = 0
    """Signals matched to the timed outcomes."""
    placed: int = 0
    """Signals the generator placed at the outcomes' locations in their windows."""

    def checked(self, outcomes: int) -> Counts:
        """The counts of the run if they are what the layout implies; else refuse."""
        if self.wrong:
            raise Refused(
                f"outcome matching gave wrong results ({len(self.wrong):,}): {self.wrong[:3]}"
            )
        if not self.delivered:
            raise Refused("no outcome was returned: the bench would time the withholding path")
        want = Counts(outcomes=outcomes, matches=self.placed, audit_records=self.placed)
        found = Counts(
            outcomes=self.right,
            matches=self.matches,
            audit_records=self.decisions,
            deliveries=self.delivered,
        )
        return check_counts("outcome matching", want, found)


def run(layout: Layout, count: int, rules: Policy) -> Timed:
    """Fill the index, time the matching of ``count`` outcomes and the baseline, and check
    every match against the layout."""
    window = match_window(rules)
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store = SqlOutcomeStore(engine)
        store.create_schema()
        fill_s = fill(store, layout)
        picks = [rng.randrange(layout.locations) for _ in range(count)]
        found = [outcome(layout, i, loc) for i, loc in enumerate(picks)]
        store.write(  # the OM approved every other finding: those returns are delivered
            Entries(
                outcomes=found,
                approvals=[
                    ApprovalEntry(
                        "om-nh", o.source, o.signal_id, "approved", f"om-{i}", NOW, RECEIVED
                    )
                    for i, o in enumerate(found)
                    if i % 2 == 0
                ],
            )
        )
        timed = Timed([], [], [], 0, 0, fill_s)
        for location, item in zip(picks, found, strict=True):
            started = time.perf_counter()
            pairs = store.earlier_signals([item], window)
            approvals = store.approvals({item.key})
            decided = decide_returns(pairs, rules, approvals, NOW)
            timed.hub_ms.append((time.perf_counter() - started) * 1000)
            placed = expected(layout, location, item, window)
            wrong = check(placed, item, pairs, decided)
            timed.wrong += wrong
            timed.right += not wrong
            timed.matches += len(pairs)
            timed.placed += len(placed)
            timed.decisions += len(decided.audit)
            timed.delivered += decided.delivered
        point = text("SELECT 1 FROM outcome_signals WHERE source = :s AND signal_id = :i")
        with engine.connect() as conn:
            for location in picks:
                source, _, _ = layout.source(location)
                started = time.perf_counter()
                conn.execute(point, {"s": source, "i": f"{source}-{location:08d}"}).first()
                timed.base_ms.append((time.perf_counter() - started) * 1000)
        store.close()
    return timed


def check(
    placed: set[str],
    item: OutcomeEntry,
    pairs: list[tuple[OutcomeEntry, SignalEntry]],
    decided: ReturnBatch,
) -> list[str]:
    """What is wrong with one timed matching against the signals ``placed`` at its location
    (nothing, if all is well)."""
    wrong = []
    got = {answered.signal_id for _, answered in pairs}
    if got != placed or len(pairs) != len(got):
        wrong.append(f"{item.signal_id}: matched {len(got)} signals, not the ones placed there")
    if sorted(r["answers"]["signal_id"] for r in decided.audit) != sorted(got):
        wrong.append(f"{item.signal_id}: not every pair decided exactly once")
    for feed in decided.feed:
        message = orjson.loads(feed.value)
        if not message["answers"]["signal_id"].startswith(feed.recipient + "-"):
            wrong.append(f"{item.signal_id}: a return answers another partner's signal")
    return wrong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signals", type=int, default=1_000_000)
    parser.add_argument("--outcomes", type=int, default=1000)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    layout = Layout(args.signals, max(1, args.signals * 2 // 5))  # 2.5 signals per location
    timed = run(layout, args.outcomes, policy())
    checked = timed.checked(args.outcomes)
    hub, base = statistics.median(timed.hub_ms), statistics.median(timed.base_ms)
    p99 = sorted(timed.hub_ms)[int(0.99 * (len(timed.hub_ms) - 1))]
    result = {
        "name": f"outcome matching against {args.signals:,} signals (median per outcome)",
        "hub": round(hub, 3),
        "baseline": round(base, 3),
        "unit": "ms/outcome",
        "ratio": round(hub / base, 2),
        "target": f"<= {TARGET_MS:.0f} ms per outcome (p99)",
        "pass": p99 <= TARGET_MS,
        "p99_ms": round(p99, 3),
        "verified_outcomes": len(timed.hub_ms),
        "decisions": timed.decisions,
        "delivered": timed.delivered,
        "checked": checked.as_json(),
    }
    if args.json:
        print(orjson.dumps([result]).decode())
        return
    print(
        f"outcome matching: {args.signals:,} signals at {layout.locations:,} locations "
        f"(index filled in {timed.fill_s:.0f} s); {len(timed.hub_ms):,} outcomes, "
        f"{timed.decisions:,} pairs decided ({timed.delivered:,} returned), every match checked"
    )
    print(f"  hub      {hub:8.3f} ms per outcome (median), p99 {p99:.3f} ms")
    print(f"  baseline {base:8.3f} ms (one primary-key point query)")
    print(f"  ratio    {hub / base:.1f}")
    verdict = "pass" if p99 <= TARGET_MS else "FAIL"
    print(f"  target   <= {TARGET_MS:.0f} ms per outcome (p99): {verdict}")


if __name__ == "__main__":
    refusing(main)
