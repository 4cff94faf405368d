"""Replay a JSON-lines file of signals through the policy and write what would happen.

Output folder layout::

    feeds/<recipient>.jsonl   what each recipient would receive
    audit.jsonl               one record per decision (delivered, withheld) and per rejection
    dead-letters.jsonl        line number, signal id, source, code and reason of each bad line
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

from services.core.pipeline import Outcome, process
from services.core.policy import Policy
from services.core.progress import Progress, silent
from services.core.records import audit_record, feed_message, rejection_record
from services.core.schema_registry import SchemaRegistry

ACTOR = "schakel-replay"
Clock = Callable[[], datetime]


@dataclass
class ReplaySummary:
    """Counts of what a replay decided."""

    signals: int = 0
    rejected: int = 0
    delivered: Counter[str] = field(default_factory=Counter)
    withheld: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    withheld_reasons: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


class _Writers:
    """Opens one JSON-lines file per recipient on first use."""

    def __init__(self, out: Path, stack: ExitStack) -> None:
        (out / "feeds").mkdir(parents=True, exist_ok=True)
        self._out = out
        self._stack = stack
        self._feeds: dict[str, IO[bytes]] = {}
        self.audit = stack.enter_context((out / "audit.jsonl").open("wb"))
        self.dead = stack.enter_context((out / "dead-letters.jsonl").open("wb"))

    def feed(self, recipient: str) -> IO[bytes]:
        handle = self._feeds.get(recipient)
        if handle is None:
            handle = self._stack.enter_context(
                (self._out / "feeds" / f"{recipient}.jsonl").open("wb")
            )
            self._feeds[recipient] = handle
        return handle


def _line(value: Any) -> bytes:
    return orjson.dumps(value) + b"\n"


def replay(
    lines: Iterable[bytes],
    registry: SchemaRegistry,
    policy: Policy,
    out: Path,
    *,
    clock: Clock,
    at: datetime | None = None,
    use_signal_time: bool = False,
    progress: Progress = silent,
) -> ReplaySummary:
    """Decide every line and write the outputs into ``out``.

    The decision time is ``at`` when given, each signal's own time when ``use_signal_time``
    (replaying history against the covenant versions then in force), or the clock otherwise.
    """
    summary = ReplaySummary()
    started = clock()
    with ExitStack() as stack:
        writers = _Writers(out, stack)
        number = 0
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            now = at or clock()
            outcome = process(raw, registry, policy, now, at_signal_time=use_signal_time)
            _record(outcome, number, writers, summary)
            if number % 1000 == 0:
                progress(number)
        progress(number)
    summary.seconds = max((clock() - started).total_seconds(), 0.0)
    return summary


def _record(outcome: Outcome, number: int, writers: _Writers, summary: ReplaySummary) -> None:
    summary.signals += 1
    if outcome.rejection is not None:
        rejection = outcome.rejection
        summary.rejected += 1
        summary.rejections[rejection.code] += 1
        writers.dead.write(
            _line(
                {
                    "line": number,
                    "signal_id": rejection.signal_id,
                    "source": rejection.source,
                    "code": rejection.code,
                    "reason": rejection.reason,
                }
            )
        )
        writers.audit.write(_line(rejection_record(rejection, actor=ACTOR)))
        return
    signal = outcome.signal
    if signal is None:  # pragma: no cover - an outcome has a signal or a rejection
        return
    for decision in outcome.decisions:
        writers.audit.write(_line(audit_record(decision, actor=ACTOR)))
        if decision.delivered:
            summary.delivered[decision.recipient] += 1
            writers.feed(decision.recipient).write(_line(feed_message(decision)))
        else:
            summary.withheld[decision.recipient] += 1
            summary.withheld_reasons[_reason_kind(decision.reason or "")] += 1


def _reason_kind(reason: str) -> str:
    """Group withheld reasons for the summary (drop the rule-specific tail)."""
    if reason.startswith("condition of rule"):
        return "condition not met" if reason.endswith("not met") else "condition error"
    if reason.startswith("no covenant rule"):
        return "no rule for source and type"
    if "expired" in reason:
        return "covenant expired"
    if "revoked" in reason:
        return "covenant revoked"
    if "not in force" in reason:
        return "covenant not yet in force"
    return reason
