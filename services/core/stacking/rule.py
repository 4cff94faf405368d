"""The stacking rule: independent partner kinds within a window, and a combined score.

Evidence counts when it lies within ``window_days`` before the newest evidence of the location
and is at least ``min_strength`` strong. Independence is by partner kind: two signals from the
grid operator (or from two water companies) are one kind. The score combines the strongest
signal of each kind as independent indications (noisy-OR): ``1 - prod(1 - s_kind)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.core.schema_registry import BARRIER_STEPS
from services.core.stacking.config import StackingConfig
from services.core.stacking.evidence import Evidence

__all__ = ["Stack", "evaluate", "in_window"]

_STEP_ORDER = {step: i for i, step in enumerate(BARRIER_STEPS)}


@dataclass(frozen=True, slots=True)
class Stack:
    """The counted evidence of one location and whether it meets the rule."""

    evidence: tuple[Evidence, ...]
    partner_kinds: tuple[str, ...]
    signal_types: tuple[str, ...]
    barrier_steps: tuple[str, ...]
    score: float
    met: bool

    @property
    def first_seen(self) -> datetime:
        return self.evidence[0].time

    @property
    def last_seen(self) -> datetime:
        return self.evidence[-1].time


def in_window(evidence: Sequence[Evidence], window_days: int) -> list[Evidence]:
    """The evidence within ``window_days`` before the newest one (the newest included)."""
    if not evidence:
        return []
    newest = max(e.time for e in evidence)
    start = newest - timedelta(days=window_days)
    return [e for e in evidence if e.time > start]


def evaluate(config: StackingConfig, evidence: Sequence[Evidence]) -> Stack:
    """Apply the rule to the evidence of one location."""
    counted = sorted(
        (e for e in in_window(evidence, config.window_days) if e.strength >= config.min_strength),
        key=lambda e: (e.time, e.key),
    )
    strongest: dict[str, float] = {}
    for e in counted:
        if e.strength > strongest.get(e.partner_kind, -1.0):
            strongest[e.partner_kind] = e.strength
    miss = 1.0
    for strength in strongest.values():
        miss *= 1.0 - strength
    score = round(1.0 - miss, 4)
    met = len(strongest) >= config.min_partner_kinds and score >= config.min_score
    steps = {step for e in counted for step in e.barrier_steps}
    return Stack(
        evidence=tuple(counted),
        partner_kinds=tuple(sorted(strongest)),
        signal_types=tuple(sorted({e.signal_type for e in counted})),
        barrier_steps=tuple(sorted(steps, key=lambda s: _STEP_ORDER.get(s, len(_STEP_ORDER)))),
        score=score,
        met=met,
    )
