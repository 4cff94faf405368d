"""What the hub remembers about one signal for stacking, and what a signal says about where.

Locations are named only by hub-internal pseudonyms (:data:`services.core.pseudonyms.INTERNAL`):
the evidence store never holds an address, BAG id or EAN. The one reversible token
(:attr:`Observation.locate`, domain :data:`LOCATOR`) lets the hub put the location back into an
alert signal, which the router then pseudonymises per recipient like any other signal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from services.core.pseudonyms import Domain

__all__ = ["LOCATOR", "Evidence", "Observation"]

LOCATOR: Final = Domain.hub("stacking-locator", reversible=True)
"""Reversible hub-internal domain naming a stacked location in its alert; never leaves the hub."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One signal's contribution to the stack of one location."""

    source: str
    signal_id: str
    partner_kind: str
    signal_type: str
    barrier_steps: tuple[str, ...]
    time: datetime
    strength: float
    key: str = field(init=False, repr=False, compare=False)
    """Unique per signal (source and signal id): the same signal read twice is the same
    evidence."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.source}\x1f{self.signal_id}")


@dataclass(frozen=True, slots=True)
class Observation:
    """A signal seen by stacking: where it is about (pseudonyms only) and its evidence."""

    primary: str | None
    """Internal pseudonym of the address, the preferred key of a location."""
    others: tuple[str, ...]
    """Internal pseudonyms of the other location identifiers (BAG id, EAN) in the signal."""
    municipality: str
    locate: Callable[[], str | None] = field(repr=False)
    """Makes the reversible token of the address (or BAG id) that names the location in an
    alert (None if the signal has neither); called only for a location without one yet."""
    evidence: Evidence
    subjects: dict[str, str]
    """Internal pseudonym of every identifier in the signal, by field path (for the audit)."""
