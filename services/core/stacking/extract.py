"""From a validated signal to what stacking keeps: pseudonyms, partner kind, strength, steps.

Only the location identifiers a schema lists in ``x-location-fields`` count (address, BAG id,
EAN; a postcode is an area, not a premises). The address is the preferred key; a BAG id or EAN
seen together with an address becomes an alias of it, so a later signal naming only the EAN
stacks on the same location.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.core.signal import Signal
from services.core.stacking.config import StackingConfig
from services.core.stacking.evidence import LOCATOR, Evidence, Observation

__all__ = ["LOCATION_KINDS", "Extractor"]

LOCATION_KINDS: Final = ("address", "bag", "ean")
"""Identifier kinds that name one premises, in order of preference as the location key."""


class Extractor:
    """Turns signals into observations (no I/O; pseudonyms from the hub's key store)."""

    def __init__(
        self,
        config: StackingConfig,
        pseudonymiser: Pseudonymiser,
        partner_kinds: Mapping[str, str],
    ) -> None:
        self._config = config
        self._pseudonym = pseudonymiser.pseudonym
        self._kinds = partner_kinds

    def observe(self, signal: Signal) -> Observation | None:
        """What ``signal`` adds to the stack of its location; None if it names no premises."""
        schema = signal.schema
        kinds = schema.identifier_kinds
        identifiers = signal.identifiers
        found: dict[str, str] = {}  # location kind -> path of its first field
        for path in schema.location_fields:
            kind = kinds.get(path)
            if kind in LOCATION_KINDS and kind not in found and path in identifiers:
                found[kind] = path
        partner_kind = self._kinds.get(signal.source)
        municipality = signal.data.get("municipality")
        if not found or partner_kind is None or not isinstance(municipality, str):
            return None
        pseudonym = self._pseudonym
        subjects = {
            path: pseudonym(INTERNAL, kinds[path], canonical)
            for path, canonical in identifiers.items()
            if path in kinds
        }
        names = [subjects[found[kind]] for kind in LOCATION_KINDS if kind in found]
        primary = names.pop(0) if "address" in found else None
        named = next((k for k in ("address", "bag") if k in found), None)
        locate: Callable[[], str | None] = _nowhere
        if named is not None:
            value = identifiers[found[named]]

            def locate() -> str | None:
                return pseudonym(LOCATOR, named, value)

        return Observation(
            primary=primary,
            others=tuple(names),
            municipality=municipality,
            locate=locate,
            evidence=Evidence(
                source=signal.source,
                signal_id=signal.id,
                partner_kind=partner_kind,
                signal_type=signal.type,
                barrier_steps=schema.barrier_steps,
                time=signal.time,
                strength=self._strength(signal),
            ),
            subjects=subjects,
        )

    def _strength(self, signal: Signal) -> float:
        field = signal.schema.strength_field
        if field is not None:
            value = signal.data.get(field)
            if value.__class__ in (int, float):
                return min(1.0, max(0.0, float(value)))
        return self._config.strength.get(signal.type, self._config.default_strength)


def _nowhere() -> str | None:
    return None
