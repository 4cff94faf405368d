"""The generator's workbench: one random stream, one time window, one pool of locations.

Everything random in a generated file comes from the single :class:`random.Random` held here,
consumed in a fixed order, so one seed always gives the same signals byte for byte. Signals
are collected as :class:`Draft` objects and turned into CloudEvents envelopes only at the end,
once they are sorted by time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

from services.demo.geography import Municipality
from services.demo.identities import LocationFactory
from services.demo.partners import Partner, senders
from services.demo.reports import (
    anonymous_tip,
    barn_approach,
    housing_observation,
    precursor_transaction,
    waste_dumping,
)
from services.demo.signals import Maker, Subject
from services.demo.timing import pick_time, rfc3339
from services.demo.utilities import (
    area_load_peak,
    consumption_anomaly,
    illegal_connection,
    meter_tampering,
    sewer_spike,
    water_abnormal_use,
)

__all__ = ["MAKERS", "SCHEMA_URI_PREFIX", "Builder", "Draft"]

SCHEMA_URI_PREFIX = "urn:schakel:signal:"

MAKERS: dict[str, Maker] = {
    "energy.consumption_anomaly.v1": consumption_anomaly,
    "energy.meter_tampering.v1": meter_tampering,
    "energy.illegal_connection.v1": illegal_connection,
    "energy.area_load_peak.v1": area_load_peak,
    "water.abnormal_use.v1": water_abnormal_use,
    "water.sewer_contamination_spike.v1": sewer_spike,
    "housing.observation.v1": housing_observation,
    "waste.drug_waste_dumping.v1": waste_dumping,
    "rural.barn_rental_approach.v1": barn_approach,
    "residents.anonymous_tip.v1": anonymous_tip,
    "chemicals.precursor_transaction.v1": precursor_transaction,
}
"""The data maker of every signal type a partner sends (the hub's own alerts excluded)."""


@dataclass(frozen=True, slots=True)
class Draft:
    """One generated signal before it becomes an envelope."""

    time: datetime
    id: str
    partner: Partner
    type: str
    data: dict[str, Any] = field(repr=False)

    def envelope(self) -> dict[str, Any]:
        """The CloudEvents 1.0 envelope a partner would publish, as a JSON-able dict."""
        return {
            "specversion": "1.0",
            "id": self.id,
            "source": self.partner.id,
            "type": self.type,
            "time": rfc3339(self.time, self.partner.time_style),
            "dataschema": SCHEMA_URI_PREFIX + self.type,
            "datacontenttype": "application/json",
            "data": self.data,
        }


class Builder:
    """Makes drafts inside ``[start, start + days)`` from one seeded random stream."""

    def __init__(self, rng: Random, start: datetime, days: int) -> None:
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be timezone-aware (e.g. 2026-09-01T00:00:00Z)")
        if days < 1:
            raise ValueError("days must be at least 1")
        self.rng = rng
        self.start = start.astimezone(UTC)
        self.days = days
        self.end = self.start + timedelta(days=days)
        self.locations = LocationFactory(rng)
        self.drafts: list[Draft] = []

    def sender(self, signal_type: str, place: Municipality) -> Partner | None:
        """A partner that sends ``signal_type`` about ``place`` (by share), or None if none does."""
        options = senders(signal_type, place)
        if not options:
            return None
        return self.rng.choices(options, [p.share for p in options])[0]

    def draft(
        self,
        sender: Partner,
        signal_type: str,
        subject: Subject,
        within: tuple[float, float] = (0.0, 1.0),
    ) -> Draft:
        """A signal of ``sender`` about ``subject``, sent within a fraction of the window.

        ``within`` is ``(from, until)`` as fractions of the window, so a scenario can say
        "the barn approach comes in the first third, the energy anomaly later". The draft is
        not kept; :meth:`emit` keeps it.
        """
        span = self.end - self.start
        at = pick_time(
            self.rng,
            self.start + span * within[0],
            self.start + span * within[1],
            sender.hours,
            sender.weekdays,
        )
        data = MAKERS[signal_type](self.rng, sender, subject, at)
        return Draft(at, str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), sender,
                     signal_type, data)  # fmt: skip

    def emit(
        self,
        sender: Partner,
        signal_type: str,
        subject: Subject,
        within: tuple[float, float] = (0.0, 1.0),
    ) -> Draft:
        """Make a draft (see :meth:`draft`) and keep it as one of the generated signals."""
        made = self.draft(sender, signal_type, subject, within)
        self.drafts.append(made)
        return made
