"""Routed signals into coverage facts: the same validation and covenant decisions as the
router (:func:`services.core.pipeline.process`), then only the fact of each counted signal is
stored — never the signal."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.core.coverage.facts import Fact, fact_of
from services.core.pipeline import process
from services.core.policy import Policy
from services.core.schema_registry import SchemaRegistry
from services.coverage.store import CoverageStore

BATCH = 500


@dataclass
class IngestSummary:
    read: int = 0
    counted: int = 0
    new: int = 0


def ingest(
    raws: Iterable[bytes],
    registry: SchemaRegistry,
    policy: Policy,
    store: CoverageStore,
    now: datetime,
    *,
    at_signal_time: bool = True,
) -> IngestSummary:
    """Count every raw envelope that a covenant in force covers; ``at_signal_time`` decides as
    of each signal's own time (history), otherwise as of ``now`` (live)."""
    summary = IngestSummary()
    pending: list[Fact] = []
    for raw in raws:
        summary.read += 1
        fact = fact_of(process(raw, registry, policy, now, at_signal_time=at_signal_time))
        if fact is None:
            continue
        summary.counted += 1
        pending.append(fact)
        if len(pending) >= BATCH:
            summary.new += store.add(pending)
            pending = []
    summary.new += store.add(pending)
    return summary
