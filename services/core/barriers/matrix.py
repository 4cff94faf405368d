"""The barrier matrix: for every business-process step, which signal types inform it, which
partners supply them, under which covenant rules, to which recipients, and how many signals
came in lately — with the steps that have no signal source or no recipient marked as gaps,
the input for the next covenant negotiation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from services.core.barriers.model import BarrierModel
from services.core.covenant.model import Covenant
from services.core.schema_registry import SchemaRegistry

NO_SOURCE: Final = "no signal source"
NO_RECIPIENT: Final = "no recipient"


@dataclass(frozen=True, slots=True)
class StepRow:
    model: str
    step: str
    name: str
    barriers: tuple[str, ...]
    """Kinds of party the model names as raising a barrier at this step."""
    signal_types: tuple[str, ...]
    sources: tuple[str, ...]
    rules: tuple[str, ...]
    """``covenant@version/rule`` of every rule in force carrying one of the signal types."""
    recipients: tuple[str, ...]
    volume: int
    gaps: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "step": self.step,
            "name": self.name,
            "barriers": list(self.barriers),
            "signal_types": list(self.signal_types),
            "sources": list(self.sources),
            "rules": list(self.rules),
            "recipients": list(self.recipients),
            "volume_30d": self.volume,
            "gaps": list(self.gaps),
        }


def barrier_matrix(
    models: Sequence[BarrierModel],
    registry: SchemaRegistry,
    covenants: Iterable[Covenant],
    volumes: Mapping[str, int],
) -> list[StepRow]:
    """One row per step of every model, in model and step order.

    ``covenants`` are the versions in force; ``volumes`` counts signals per type (e.g. the
    last 30 days of the audit log).
    """
    rules = [(c, r) for c in covenants for r in c.rules]
    rows: list[StepRow] = []
    for model in models:
        for step in model.steps:
            types = tuple(t for t in registry.types() if step.id in registry.get(t).barrier_steps)
            covering = [(c, r) for c, r in rules if set(r.types) & set(types)]
            sources = sorted({p for _, r in covering for p in r.from_})
            recipients = sorted({p for _, r in covering for p in r.to})
            gaps = ([] if sources else [NO_SOURCE]) + ([] if recipients else [NO_RECIPIENT])
            rows.append(
                StepRow(
                    model=model.model,
                    step=step.id,
                    name=step.name,
                    barriers=tuple(sorted({b.by for b in step.barriers})),
                    signal_types=types,
                    sources=tuple(sources),
                    rules=tuple(sorted({f"{c.key}/{r.id}" for c, r in covering})),
                    recipients=tuple(recipients),
                    volume=sum(volumes.get(t, 0) for t in types),
                    gaps=tuple(gaps),
                )
            )
    return rows


def unknown_steps(models: Sequence[BarrierModel], registry: SchemaRegistry) -> dict[str, list[str]]:
    """Signal types naming an ``x-barrier-steps`` id that no model defines (type -> ids)."""
    known = {s for m in models for s in m.step_ids}
    found: dict[str, list[str]] = {}
    for signal_type in registry.types():
        missing = [s for s in registry.get(signal_type).barrier_steps if s not in known]
        if missing:
            found[signal_type] = missing
    return found
