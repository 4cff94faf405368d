"""Indicators tested against outcomes: what followed each signal at its location (pure).

For every indexed signal the hub asks what happened at its location (any of its premises
identifiers) within ``window`` after it: a **positive** finding (``x-outcome: finding``), else
a **negative** check (``no_finding``), else **nothing yet**. Measures do not count (they follow
findings). Signals are counted per signal type, per partner, per covenant rule that delivered
them and — for the hub's stacked-location alerts, one per alert however often it was revised —
per stacking rule; per month of the signal (UTC) and in total.

**Suppression, as the coverage release does it** (:mod:`services.core.coverage.release`):
signals are counted in the finest cells — signal type x partner x the rules that delivered it
x month x class — and a cell below the threshold (default 5, zero included) is suppressed:
left out. Every number released — a count per type, partner, rule or stacking rule, per month
or in total, a precision and its interval, a median lead time — is computed **from the
released cells only**, and a count that comes out below the threshold is shown as ``None``
("<5"). So two tallies that differ only in suppressed cells give exactly the same release,
whatever rows a query compares: no difference of queries (a partner minus its types, a total
minus the other months) reveals a small count. Tested with Hypothesis. Counts are therefore
"sums of the published cells" and say so.

Precision is the share of signals followed by a positive finding, with a Wilson score interval
(95 %); *checked precision* is the share of positives among the signals whose location was
checked at all (positive or negative). Lead time is the median number of days from the signal
to the finding.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from services.core.coverage.release import DEFAULT_THRESHOLD
from services.core.outcomes.entries import SignalEntry

__all__ = [
    "ALERT_TYPE",
    "CLASSES",
    "DEFAULT_WINDOW_DAYS",
    "DIMENSIONS",
    "Followed",
    "IndicatorRelease",
    "IndicatorRow",
    "Tally",
    "classify",
    "tally",
    "wilson",
]

Class = Literal["positive", "negative", "none"]
CLASSES: Final[tuple[Class, ...]] = ("positive", "negative", "none")
Dimension = Literal["type", "partner", "rule", "stacking"]
DIMENSIONS: Final[tuple[Dimension, ...]] = ("type", "partner", "rule", "stacking")
DEFAULT_WINDOW_DAYS: Final = 180
ALERT_TYPE: Final = "hub.stacked_location_alert.v1"
Z95: Final = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % by default); (0, 1) without trials."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True, slots=True)
class Followed:
    """What followed one signal: its class and, for a positive, the lead time."""

    outcome: Class
    lead: timedelta | None = None


def classify(
    time: datetime, outcomes: Iterable[tuple[datetime, str]], window: timedelta
) -> Followed:
    """The class of a signal at ``time`` given the outcomes ``(time, x-outcome)`` at its
    location: the first finding within ``window`` after it, else a negative check, else none."""
    first: datetime | None = None
    negative = False
    for at, outcome_class in outcomes:
        if not (time <= at <= time + window):
            continue
        if outcome_class == "finding":
            first = at if first is None or at < first else first
        elif outcome_class == "no_finding":
            negative = True
    if first is not None:
        return Followed("positive", first - time)
    return Followed("negative" if negative else "none")


def month_of(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


Cell = tuple[str, str, tuple[str, ...], str]
"""The finest cell: (signal type, partner, the rules that delivered it, month)."""


@dataclass
class Tally:
    """Counts per finest cell and class, and the positives' lead times (days) per cell.

    Every row of the release — per type, partner, rule or stacking rule, per month or in
    total — is a sum of these cells, so suppressing them suppresses everything derived."""

    counts: dict[tuple[Cell, Class], int] = field(default_factory=lambda: defaultdict(int))
    leads: dict[Cell, list[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, cell: Cell, followed: Followed) -> None:
        self.counts[(cell, followed.outcome)] += 1
        if followed.lead is not None:
            self.leads[cell].append(followed.lead / timedelta(days=1))

    def cells(self) -> list[Cell]:
        return sorted({cell for cell, _ in self.counts})

    def months(self) -> list[str]:
        return sorted({cell[3] for cell, _ in self.counts})


def tally(
    signals: Iterable[SignalEntry],
    outcomes_at: Mapping[tuple[str, str], Sequence[tuple[datetime, str]]],
    window: timedelta,
) -> Tally:
    """Count every signal: ``outcomes_at[(source, signal id)]`` are the outcomes at its
    locations (missing: none). An alert counts once (its first revision)."""
    counted = Tally()
    first_revision: dict[str, SignalEntry] = {}
    for entry in signals:
        if entry.signal_type == ALERT_TYPE and entry.thread is not None:
            known = first_revision.get(entry.thread)
            if known is None or (entry.time, entry.signal_id) < (known.time, known.signal_id):
                first_revision[entry.thread] = entry
            continue
        _count(counted, entry, outcomes_at, window)
    for entry in first_revision.values():
        _count(counted, entry, outcomes_at, window)
    return counted


def _count(
    counted: Tally,
    entry: SignalEntry,
    outcomes_at: Mapping[tuple[str, str], Sequence[tuple[datetime, str]]],
    window: timedelta,
) -> None:
    followed = classify(entry.time, outcomes_at.get(entry.key, ()), window)
    cell = (entry.signal_type, entry.source, tuple(sorted(entry.rules)), month_of(entry.time))
    counted.add(cell, followed)


def _keys(cell: Cell, stacking_rule: str) -> list[tuple[Dimension, str]]:
    signal_type, partner, rules, _ = cell
    keys: list[tuple[Dimension, str]] = [("type", signal_type), ("partner", partner)]
    keys += [("rule", rule) for rule in rules]
    if signal_type == ALERT_TYPE:
        keys.append(("stacking", stacking_rule))
    return keys


@dataclass(frozen=True, slots=True)
class IndicatorRow:
    """One key in one month (``month`` None: the total); ``None`` counts are suppressed."""

    dimension: Dimension
    key: str
    month: str | None
    positive: int | None
    negative: int | None
    none: int | None
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    checked_precision: float | None
    checked_low: float | None
    checked_high: float | None
    lead_days_median: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "key": self.key,
            "month": self.month,
            "positive": self.positive,
            "negative": self.negative,
            "none": self.none,
            "precision": _round(self.precision),
            "precision_ci95": _ci(self.precision_low, self.precision_high),
            "checked_precision": _round(self.checked_precision),
            "checked_precision_ci95": _ci(self.checked_low, self.checked_high),
            "lead_days_median": _round(self.lead_days_median, 1),
        }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _ci(low: float | None, high: float | None) -> list[float] | None:
    return None if low is None or high is None else [round(low, 4), round(high, 4)]


@dataclass(frozen=True, slots=True)
class IndicatorRelease:
    threshold: int
    window_days: int
    months: tuple[str, ...]
    rows: tuple[IndicatorRow, ...]

    def totals(self, dimension: Dimension | None = None) -> list[IndicatorRow]:
        return [
            r
            for r in self.rows
            if r.month is None and (dimension is None or r.dimension == dimension)
        ]

    def trend(self, dimension: Dimension, key: str) -> list[IndicatorRow]:
        return [
            r
            for r in self.rows
            if r.dimension == dimension and r.key == key and r.month is not None
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "window_days": self.window_days,
            "note": (
                f"counts below {self.threshold} are suppressed: a count is the sum of the "
                f"published cells (signal type x partner x rules x month x class, each at "
                f"least {self.threshold}) and null when that is below {self.threshold}; "
                "precision, intervals and lead times come from published counts only"
            ),
            "months": list(self.months),
            "rows": [r.to_json() for r in self.rows],
        }


def release(
    counted: Tally,
    *,
    window: timedelta,
    threshold: int = DEFAULT_THRESHOLD,
    months: Sequence[str] | None = None,
    stacking_rule: str = "stacking",
) -> IndicatorRelease:
    """The published view of a tally (see the module's note on suppression)."""
    if threshold < 1:
        raise ValueError(f"threshold {threshold} is below 1. Fix: use 1 or more (default 5).")
    shown_months = tuple(months) if months is not None else tuple(counted.months())
    wanted = set(shown_months)
    sums: dict[tuple[Dimension, str, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])
    leads: dict[tuple[Dimension, str, str | None], list[float]] = defaultdict(list)
    for cell in counted.cells():
        month = cell[3]
        if month not in wanted:
            continue
        released = [counted.counts.get((cell, c), 0) for c in CLASSES]
        released = [n if n >= threshold else 0 for n in released]  # suppressed: left out
        if not any(released):
            continue  # nothing published: the cell leaves no trace, not even a row
        for dimension, key in _keys(cell, stacking_rule):
            where: tuple[Dimension, str, str | None]
            for where in ((dimension, key, month), (dimension, key, None)):
                total = sums[where]
                for i, n in enumerate(released):
                    total[i] += n
                if released[0]:
                    leads[where] += counted.leads.get(cell, [])
    rows: list[IndicatorRow] = []
    for dimension, key in sorted({(d, k) for d, k, _ in sums}):
        for period in (*shown_months, None):
            found = sums.get((dimension, key, period))
            if found is None:
                continue
            leads_here = leads.get((dimension, key, period), [])
            rows.append(_row(dimension, key, period, found, leads_here, threshold))
    return IndicatorRelease(threshold, window // timedelta(days=1), shown_months, tuple(rows))


def _row(
    dimension: Dimension,
    key: str,
    month: str | None,
    sums: Sequence[int],
    leads: Sequence[float],
    threshold: int,
) -> IndicatorRow:
    """A row from sums of published cells: each sum is 0 or at least the threshold, a 0 is
    shown as suppressed ("<5"). Rates are those of the published sums, and given only when
    the positive count is published: a rate of 0 over suppressed positives would mislead."""
    positive, negative, none = sums
    precision = low = high = None
    checked = checked_low = checked_high = None
    if positive >= threshold:
        total = positive + negative + none
        precision = positive / total
        low, high = wilson(positive, total)
        checked = positive / (positive + negative)
        checked_low, checked_high = wilson(positive, positive + negative)

    def shown(n: int) -> int | None:
        return n if n >= threshold else None

    return IndicatorRow(
        dimension=dimension,
        key=key,
        month=month,
        positive=shown(positive),
        negative=shown(negative),
        none=shown(none),
        precision=precision,
        precision_low=low,
        precision_high=high,
        checked_precision=checked,
        checked_low=checked_low,
        checked_high=checked_high,
        lead_days_median=statistics.median(leads) if positive and leads else None,
    )
