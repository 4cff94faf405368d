"""What every benchmark checks before it prints a figure: that the work it timed was done.

A figure is printed only when

* the workload is what the benchmark says it is: run offline through the router's own pure
  step (:func:`services.core.pipeline.process`, no broker, no store, no hub counters), it is
  rejected exactly where the benchmark plants rejections and delivers something. (The router
  figures of 2026-11 timed a workload whose every signature was broken: all signals went the
  rejection path, and nothing noticed.) :func:`expect` derives the counts the hub must leave
  behind;
* what the hub left behind — rows in the audit store, feed messages and dead letters on the
  broker (counted by the benchmark after the timed run, see :mod:`bench.observe`) — equals
  that expectation: :func:`check`.

Otherwise the benchmark raises :class:`Refused`; :func:`refusing` turns that into a message on
stderr and exit status :data:`REFUSED_EXIT`, with nothing on stdout, so ``bench/run.py``
shows the benchmark as refused instead of a figure. Each result's ``checked`` field carries the
counts that were checked (:meth:`Counts.as_json`).
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from services.core.pipeline import process
from services.core.policy import Policy
from services.core.schema_registry import SchemaRegistry

REFUSED_EXIT = 3


class Refused(Exception):  # noqa: N818 - what the benchmark does: it refuses to print a figure
    """The work a benchmark timed was not the work it claims; no figure may be printed."""


@dataclass(frozen=True)
class Counts:
    """What a timed run must have produced; ``None`` where the benchmark has no such thing."""

    signals: int | None = None
    deliveries: int | None = None
    audit_records: int | None = None
    dead_letters: int | None = None
    evidence: int | None = None
    """Stacking: signals whose evidence is stored."""
    outcomes: int | None = None
    """Outcome matching: outcomes whose matches were checked and found right."""
    matches: int | None = None
    """Outcome matching: signals matched to the outcomes (the generator's placement)."""

    def as_json(self) -> dict[str, int]:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class Expectation:
    """A workload's counts as the pure pipeline decides them, and the exchanges it delivers."""

    counts: Counts
    exchange_ids: frozenset[str]
    """The keyed exchange ids the feeds must carry (``Decision.feed_id``: what a recipient is
    given, not the hub's own exchange id)."""
    rejections: Counter[str]
    withheld: int


def expect(
    signals: Iterable[tuple[str, bytes]],
    registry: SchemaRegistry,
    policy: Policy,
    now: datetime,
    *,
    planted_rejections: int = 0,
) -> Expectation:
    """Decide ``(partner, raw signal)`` pairs offline as the router would; refuse a workload
    rejected where it plants no rejection, or one that delivers nothing."""
    total = deliveries = withheld = records = 0
    rejections: Counter[str] = Counter()
    exchange_ids: set[str] = set()
    for partner, raw in signals:
        total += 1
        outcome = process(raw, registry, policy, now, expected_source=partner)
        if outcome.rejection is not None:
            rejections[outcome.rejection.code] += 1
            records += 1
            continue
        for decision in outcome.decisions:
            records += 1
            if decision.delivered:
                deliveries += 1
                if decision.feed_id is None:
                    raise Refused(
                        f"a delivered decision for {decision.recipient} carries no exchange id"
                    )
                exchange_ids.add(decision.feed_id)
            else:
                withheld += 1
    rejected = sum(rejections.values())
    if rejected != planted_rejections:
        codes = ", ".join(f"{code} {n}" for code, n in rejections.most_common()) or "none"
        raise Refused(
            f"the workload is broken: {rejected:,} of {total:,} signals are rejected offline "
            f"({codes}) where it plants {planted_rejections:,}; the benchmark would time the "
            "rejection path. Fix the workload (a signal changed after signing must be signed "
            "again: services.demo.keys.DemoSigner)"
        )
    if total and not deliveries:
        raise Refused(
            f"the workload delivers nothing: {total:,} signals, {withheld:,} decisions all "
            "withheld; the benchmark would time the withholding path"
        )
    counts = Counts(
        signals=total, deliveries=deliveries, audit_records=records, dead_letters=rejected
    )
    return Expectation(counts, frozenset(exchange_ids), rejections, withheld)


def check(what: str, expected: Counts, observed: Counts) -> Counts:
    """``observed`` if it equals ``expected`` in every count the expectation has; else refuse,
    naming each count that differs."""
    wrong = [
        f"{f.name.replace('_', ' ')}: expected {want:,}, found "
        + ("none counted" if got is None else f"{got:,}")
        for f in fields(expected)
        if (want := getattr(expected, f.name)) is not None
        and (got := getattr(observed, f.name)) != want
    ]
    if wrong:
        raise Refused(
            f"{what}: the timed work was not done as the workload implies: " + "; ".join(wrong)
        )
    return observed


def check_exchanges(what: str, expected: frozenset[str], seen: Iterable[str]) -> int:
    """The number of distinct exchanges ``seen`` if they are exactly ``expected``; else refuse."""
    found = set(seen)
    missing, extra = len(expected - found), len(found - expected)
    if missing or extra:
        raise Refused(
            f"{what}: {missing:,} of {len(expected):,} expected exchanges never reached a feed"
            + (f" and {extra:,} unexpected ones did" if extra else "")
        )
    return len(found)


def refusing(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main``; a :class:`Refused` becomes a message and exit status 3."""
    try:
        main()
    except Refused as exc:
        name = Path(sys.argv[0]).name or "benchmark"
        print(f"{name}: REFUSED, no figure printed: {exc}", file=sys.stderr)
        raise SystemExit(REFUSED_EXIT) from None
