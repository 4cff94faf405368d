"""An in-memory :class:`~services.outcomes.store.OutcomeStore` with the SQL store's semantics
(known keys skipped, every approval signal kept, purge by ``keep_until``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from services.core.outcomes.entries import (
    ApprovalEntry,
    Entries,
    OutcomeEntry,
    SignalEntry,
    arrival,
)
from services.outcomes.store import Pair, Purged


class MemoryOutcomeStore:
    def __init__(self) -> None:
        self.signal_entries: dict[tuple[str, str], SignalEntry] = {}
        self.outcome_entries: dict[tuple[str, str], OutcomeEntry] = {}
        self.approval_entries: dict[tuple[str, str, str, str], ApprovalEntry] = {}
        self.writes = 0
        self.closed = False

    def write(self, entries: Entries) -> None:
        self.writes += 1
        for s in entries.signals:
            self.signal_entries.setdefault(s.key, s)
        for o in entries.outcomes:
            self.outcome_entries.setdefault(o.key, o)
        for a in entries.approvals:
            self.approval_entries.setdefault(a.stored_key, a)

    def earlier_signals(self, outcomes: Sequence[OutcomeEntry], window: timedelta) -> list[Pair]:
        pairs: list[Pair] = []
        for outcome in outcomes:
            places = set(outcome.locations)
            for entry in self.signal_entries.values():
                if (
                    places.intersection(entry.locations)
                    and outcome.time - window <= entry.time <= outcome.time
                    and arrival(entry) < arrival(outcome)
                ):
                    pairs.append((outcome, _bare(entry)))
        return pairs

    def later_outcomes(self, signals: Sequence[SignalEntry], window: timedelta) -> list[Pair]:
        pairs: list[Pair] = []
        for entry in signals:
            places = set(entry.locations)
            for outcome in self.outcome_entries.values():
                if (
                    places.intersection(outcome.locations)
                    and entry.time <= outcome.time <= entry.time + window
                    and arrival(entry) < arrival(outcome)
                ):
                    pairs.append((outcome, _bare(entry)))
        return pairs

    def outcomes(self, keys: Iterable[tuple[str, str]]) -> list[OutcomeEntry]:
        return [self.outcome_entries[k] for k in sorted(set(keys)) if k in self.outcome_entries]

    def approvals(
        self, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str, str], list[ApprovalEntry]]:
        wanted = set(keys)
        found: dict[tuple[str, str, str], list[ApprovalEntry]] = {}
        ordered = sorted(self.approval_entries.values(), key=lambda a: (arrival(a), a.signal_id))
        for a in ordered:
            if (a.outcome_source, a.outcome_signal_id) in wanted:
                found.setdefault(a.key, []).append(a)
        return found

    def purge(self, now: datetime) -> Purged:
        signals = [k for k, s in self.signal_entries.items() if s.keep_until < now]
        outcomes = [k for k, o in self.outcome_entries.items() if o.keep_until < now]
        for k in signals:
            del self.signal_entries[k]
        for k in outcomes:
            del self.outcome_entries[k]
        approvals = [k for k in self.approval_entries if (k[0], k[1]) not in self.outcome_entries]
        for a in approvals:
            del self.approval_entries[a]
        return Purged(len(signals), len(outcomes), len(approvals))

    def signals(self) -> Iterator[SignalEntry]:
        for entry in list(self.signal_entries.values()):
            yield _bare(entry)

    def signal_keys_at(self, locations: Iterable[str]) -> dict[tuple[str, str], set[str]]:
        wanted = set(locations)
        return {
            k: wanted.intersection(s.locations)
            for k, s in self.signal_entries.items()
            if wanted.intersection(s.locations)
        }

    def all_outcomes(self) -> list[OutcomeEntry]:
        return list(self.outcome_entries.values())

    def stackable_locations(self) -> dict[tuple[str, str], set[str]]:
        return {k: set(s.locations) for k, s in self.signal_entries.items() if s.stackable}

    def close(self) -> None:
        self.closed = True


def _bare(entry: SignalEntry) -> SignalEntry:
    """The entry as the SQL store reads it back: without its locations."""
    return replace(entry, locations=())
