"""The outcomes worker's step: consumed records in, the entries to store and the returns out.

Each record goes through the router's own pipeline (:func:`services.core.pipeline.process`:
strict reading, validation, signature, time and the policy's decisions); what the router
rejects it dead-letters and audits, so here it is only skipped. Accepted signals become store
entries (:class:`~services.core.outcomes.extract.Extractor`). After the entries are written,
:meth:`OutcomeStep.decide` finds every pair to decide from the *stored* state — the batch's
outcomes against earlier signals, the batch's signals against outcomes already stored, and the
outcomes the batch's approvals name — so the order in which topics are read does not matter,
and a replay decides the same pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.core.outcomes.entries import Entries
from services.core.outcomes.extract import Extractor
from services.core.outcomes.returns import ReturnBatch, decide_returns, match_record, match_window
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.pseudonyms import Pseudonymiser
from services.core.schema_registry import SchemaRegistry
from services.outcomes.store import OutcomeStore
from services.router.topics import partner_of


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a ``signals.<partner>`` topic."""

    topic: str
    value: bytes
    timestamp: datetime | None = None
    """The Kafka record's timestamp: when the hub received the signal (its gateway sets it on
    accepting the signal). ``None`` (a file, a test): the moment the step decides it."""


@dataclass
class Extracted:
    entries: Entries = field(default_factory=Entries)
    audit: list[dict[str, Any]] = field(default_factory=list)
    """One matching record per outcome (action ``use``, result ``matched``)."""
    signals: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass
class OutcomeStep:
    """Everything the step needs under one compiled policy (rebuilt when it changes)."""

    registry: SchemaRegistry
    policy: Policy
    extractor: Extractor

    @classmethod
    def build(
        cls, registry: SchemaRegistry, policy: Policy, pseudonymiser: Pseudonymiser
    ) -> OutcomeStep:
        return cls(registry, policy, Extractor(policy, pseudonymiser))

    def extract(
        self, records: Sequence[Record], now: datetime, *, at_signal_time: bool = False
    ) -> Extracted:
        """The entries of the accepted records; ``at_signal_time`` decides each as of its own
        time (history, ``schakel outcomes ingest``) instead of ``now``."""
        out = Extracted()
        for record in records:
            out.signals += 1
            outcome = process(
                record.value,
                self.registry,
                self.policy,
                now,
                expected_source=partner_of(record.topic),
                at_signal_time=at_signal_time,
            )
            if outcome.signal is None:
                out.skip(outcome.rejection.code if outcome.rejection else "rejected")
                continue
            moment = outcome.signal.time if at_signal_time else now
            received = record.timestamp or moment
            observed = self.extractor.observe(outcome.signal, outcome.decisions, moment, received)
            if observed.signal is not None:
                out.entries.signals.append(observed.signal)
            elif observed.outcome is not None:
                out.entries.outcomes.append(observed.outcome)
                out.audit.append(match_record(observed.outcome, moment))
            elif observed.approval is not None:
                out.entries.approvals.append(observed.approval)
            else:
                out.skip(observed.skipped or "skipped")
        return out

    def decide(self, entries: Entries, store: OutcomeStore, now: datetime) -> ReturnBatch:
        """Decide every pair the batch's entries take part in, from the stored state (the
        entries must be written first)."""
        window = match_window(self.policy)
        pairs = store.earlier_signals(entries.outcomes, window)
        pairs += store.later_outcomes(entries.signals, window)
        if entries.approvals:
            named = store.outcomes(
                (a.outcome_source, a.outcome_signal_id) for a in entries.approvals
            )
            pairs += store.earlier_signals(named, window)
        approvals = store.approvals({outcome.key for outcome, _ in pairs})
        return decide_returns(pairs, self.policy, approvals, now)
