"""The pure step of the stacking worker: consumed records in, audit records and changes out.

Only signals the router accepts (validated and signature-checked by the same functions as
:func:`services.core.pipeline.process`; the router dead-letters the rest) and that a rule with
``stacking: true`` of a covenant in force allows, its condition met for the signal, are used;
each use becomes an audit record naming that rule
(:func:`services.core.stacking.purpose.use_record`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.core.errors import SignalRejected
from services.core.pipeline import check_signature, check_time
from services.core.policy import Policy
from services.core.schema_registry import SchemaRegistry
from services.core.signal import accept_bytes
from services.core.stacking.engine import Changes, Stacker
from services.core.stacking.extract import Extractor
from services.core.stacking.purpose import StackingRules, use_record
from services.router.topics import partner_of


@dataclass(frozen=True, slots=True)
class Record:
    """One record read from a ``signals.<partner>`` topic."""

    topic: str
    value: bytes


@dataclass
class StackedBatch:
    audit: list[dict[str, Any]] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)
    signals: int = 0
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    """Signals not used, per reason (a rejection code, ``not_for_stacking``,
    ``rule_not_in_force``, ``condition_not_met``, ``no_location``): for the worker's metrics."""

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass
class StackingStep:
    """Everything the step needs; rebuilt when the covenants change."""

    registry: SchemaRegistry
    policy: Policy
    rules: StackingRules
    extractor: Extractor
    stacker: Stacker

    def run(self, records: Sequence[Record], now: datetime) -> StackedBatch:
        out = StackedBatch()
        observations = []
        for record in records:
            out.signals += 1
            try:
                signal = accept_bytes(
                    record.value, self.registry, expected_source=partner_of(record.topic)
                )
                if not self.policy.allows_stacking(signal):
                    out.skip("not_for_stacking")
                    continue
                check_signature(record.value, signal, self.policy, now)
                check_time(signal, self.policy, now)
            except SignalRejected as exc:
                out.skip(exc.code)
                continue  # the router dead-letters and audits bad input
            found = self.rules.use(signal, now)
            rule = found.rule
            if rule is None:
                out.skip(found.reason or "not_for_stacking")
                continue  # no covenant in force allows it, or the rule's condition is not met
            observation = self.extractor.observe(signal)
            if observation is None:
                out.skip("no_location")
                continue
            out.used += 1
            out.audit.append(
                use_record(
                    source=signal.source,
                    signal_id=signal.id,
                    signal_type=signal.type,
                    rule=rule,
                    subjects=observation.subjects,
                    fields=sorted(observation.subjects),
                    now=now,
                )
            )
            observations.append(observation)
        out.changes = self.stacker.apply(observations, now)
        return out
