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
    """When the hub received the signal, as far as it can trust it: the Kafka record's
    LogAppendTime, stamped by the broker (:func:`services.outcomes.loop.receipt`). ``None``:
    see :attr:`read` (and the moment the step decides it when that is None too)."""
    claimed: datetime | None = None
    """The record's CreateTime — set by whoever produced it (the gateway, or a partner
    producing directly), so never trusted to move a record *earlier* than it was read."""
    read: datetime | None = None
    """When the worker read the record (wall clock): the hub had it by then."""

    def received(self, answering: bool) -> datetime | None:
        """When the hub received it, erring on the safe side where the broker did not stamp it.

        A signal that may be *answered* counts as received when the worker read it (the
        latest moment it can have arrived: a backdated CreateTime cannot move it earlier); an
        outcome or approval that *answers* counts as received at its CreateTime, but never
        later than it was read. So a signal is answered only if it was read before the outcome
        was produced, which a signal sent after the outcome cannot be, whatever it claims.
        """
        if self.timestamp is not None or self.read is None:
            return self.timestamp
        if answering and self.claimed is not None:
            return min(self.claimed, self.read)
        return self.read


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
            schema = outcome.signal.schema
            answering = schema.approval or schema.outcome is not None
            received = record.received(answering) or moment
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
