"""What a signal is about, and the helpers the per-partner data makers share.

The makers (:mod:`services.demo.utilities` for grid operator and water companies,
:mod:`services.demo.reports` for reports by people) fill in the ``data`` part of each signal
type as the partner systems would. Each maker takes what the signal is about (a
:class:`Subject`) and how strong it should be:

* ``noise`` - everyday background. Partners only send flags they find unusual, but most have
  an innocent cause (a heat pump, a leak, an empty house, a caretaker's hunch), so scores are
  mostly low, with a thin tail of confident false positives.
* ``weak`` - a decoy's signal: low scores about a location that gets a second weak signal,
  the coincidence a careless stacking rule would mistake for a production site.
* ``strong`` - a planted production site: what a grow room or drug lab really looks like in
  the partner's data (12/12 light cycles, cooling water, chemical smell, cash precursor sales).

Only fields defined by the schemas in ``schemas/signals`` are written, in schema order, and
optional fields are left out now and then as real partners do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random
from typing import Any, Literal, TypeVar

from services.demo.geography import Municipality
from services.demo.identities import Location
from services.demo.partners import Partner
from services.demo.timing import local_date, rfc3339

__all__ = [
    "Buyer",
    "Drug",
    "Level",
    "Maker",
    "Subject",
    "area_of",
    "before",
    "location_of",
    "period",
    "pick",
    "strength",
]

Level = Literal["noise", "weak", "strong"]
Drug = Literal["cannabis", "synthetic"]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Buyer:
    """A precursor buyer as the seller's customer record has it (spelling included)."""

    name: str
    kvk: str | None
    iban: str | None
    payment: str


@dataclass(frozen=True, slots=True)
class Subject:
    """What one signal is about, and how strongly it points at drug production."""

    place: Municipality
    level: Level = "noise"
    drug: Drug | None = None
    location: Location | None = None
    """The premises, for signals that name an address (and EAN / BAG)."""
    postcode: str | None = None
    """A canonical postcode, for waste found in the street rather than on a premises."""
    area: str | None = None
    """A 4-digit postcode area, for area-level signals (load peaks, sewer samples)."""
    buyer: Buyer | None = None

    @property
    def strong(self) -> bool:
        return self.level == "strong"


Maker = Callable[[Random, Partner, Subject, datetime], dict[str, Any]]


def pick(rng: Random, options: Mapping[_T, float]) -> _T:
    """One key of ``options``, chosen with the value as its weight."""
    return rng.choices(list(options), list(options.values()))[0]


def before(rng: Random, sender: Partner, at: datetime, low_h: float, high_h: float) -> str:
    """A data timestamp ``low_h``-``high_h`` hours before the signal was published."""
    return rfc3339(at - timedelta(hours=rng.uniform(low_h, high_h)), sender.time_style)


def period(at: datetime, days: int) -> dict[str, str]:
    """The ``days`` local days up to the day before ``at``: what a batch job assessed."""
    end = local_date(at) - timedelta(days=1)
    return {"start": (end - timedelta(days=days - 1)).isoformat(), "end": end.isoformat()}


def _noise_score(rng: Random) -> float:
    """Background strength: mostly low, some middling, a thin tail of confident mistakes."""
    roll = rng.random()
    if roll < 0.86:
        return rng.betavariate(2, 6)
    if roll < 0.96:
        return rng.betavariate(5, 4)
    return rng.betavariate(9, 1.5)


def strength(rng: Random, subject: Subject, floor: float) -> float:
    """A score for ``subject``: at least ``floor`` if strong, low if weak, everyday if noise."""
    if subject.level == "strong":
        return round(floor + (0.995 - floor) * rng.betavariate(2.5, 1.5), 3)
    if subject.level == "weak":
        return round(rng.uniform(0.22, 0.48), 3)
    return round(_noise_score(rng), 3)


def location_of(subject: Subject) -> Location:
    """The premises of ``subject``; signal types that name an address cannot do without."""
    if subject.location is None:
        raise ValueError("this signal type needs a location")
    return subject.location


def area_of(subject: Subject) -> str:
    """The 4-digit postcode area of ``subject`` (its own, or its premises')."""
    if subject.area is not None:
        return subject.area
    return location_of(subject).postcode4
