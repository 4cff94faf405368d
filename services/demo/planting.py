"""Planted production sites and decoys: the ground truth a stacking algorithm is judged by.

A planted site is a grow room or drug lab that several independent partners notice over the
window, each in its own way and its own spelling of the address, so that only a hub which
normalises identifiers and stacks across partner kinds finds it:

* ``cannabis`` / ``urban`` - a grow room in a dwelling: a high energy anomaly with a 12/12 or
  18/6 light cycle, plus at least two of abnormal water use, a housing corporation's
  observation (where one lets homes) and a resident's tip; sometimes meter tampering.
* ``cannabis`` / ``rural`` - a barn: the farmer reports an approach first, then the energy
  anomaly comes, with water use or a tip.
* ``synthetic`` - a lab: precursor deliveries to the address, continuous high power, and
  cooling water, a tip, a housing observation or a barn approach; drug waste dumped nearby and
  a sewer spike in the postcode area add area-level evidence.

Every planted site is reported by at least three partner kinds naming the location itself.
Planted sites lie in RIEC Noord-Holland, the region the covenants share signals for, and
their strongest signals pass the covenants' thresholds (energy score >= 0.8, water >= 0.75).

Decoys are what makes the task honest: one location reported twice by the same partner kind,
or by two kinds with weak scores. They are not production sites.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from services.demo.builder import Builder, Draft
from services.demo.geography import MUNICIPALITIES, Municipality
from services.demo.identities import Location
from services.demo.partners import partner
from services.demo.reports import new_buyer
from services.demo.signals import Drug, Subject
from services.demo.timing import TimeStyle, rfc3339

__all__ = ["SCENARIOS", "Decoy", "PlantedLocation", "plant", "plant_decoy"]

Scenario = Literal["cannabis_urban", "cannabis_rural", "synthetic"]
SCENARIOS: tuple[Scenario, ...] = (
    "cannabis_urban",
    "cannabis_rural",
    "synthetic",
    "cannabis_urban",
)
"""Scenarios in the order they are planted (then repeated): half are urban grow rooms."""

_ENERGY = "energy.consumption_anomaly.v1"
_WATER = "water.abnormal_use.v1"
_HOUSING = "housing.observation.v1"
_TIP = "residents.anonymous_tip.v1"
_BARN = "rural.barn_rental_approach.v1"
_PRECURSOR = "chemicals.precursor_transaction.v1"
_WASTE = "waste.drug_waste_dumping.v1"


@dataclass(frozen=True, slots=True)
class PlantedLocation:
    """Ground truth for one planted production site. Holds raw identifiers: test data only."""

    id: str
    kind: Drug
    setting: Literal["urban", "rural"]
    municipality: str
    address: str
    """Canonical address, as :func:`services.core.identifiers.normalise` gives it."""
    bag: str
    ean: str
    partner_kinds: tuple[str, ...]
    """Distinct kinds of the partners whose signals name the location (sorted)."""
    signal_types: tuple[str, ...]
    signal_ids: tuple[str, ...]
    """Signals that name the location by address, EAN or BAG id."""
    nearby_signal_ids: tuple[str, ...]
    """Area-level evidence: waste dumped at a nearby postcode, sewer or load peaks in the area."""
    first_seen: str
    last_seen: str

    def as_dict(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Decoy:
    """A location with coincidental weak or same-kind signals: must not count as a site."""

    reason: Literal["same_kind_repeated", "two_kinds_weak"]
    municipality: str
    address: str
    partner_kinds: tuple[str, ...]
    signal_ids: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in self.__slots__}


def _jsonable(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _weighted_place(b: Builder, *, rural: bool) -> Municipality:
    places = [m for m in MUNICIPALITIES if m.in_riec_nh and (m.rural or not rural)]
    weights = [m.rural if rural else m.population_k for m in places]
    return b.rng.choices(places, weights)[0]


def _report(
    b: Builder, signal_type: str, subject: Subject, within: tuple[float, float]
) -> Draft | None:
    sender = b.sender(signal_type, subject.place)
    return None if sender is None else b.emit(sender, signal_type, subject, within)


def plant(b: Builder, scenario: Scenario, number: int) -> PlantedLocation:
    """Plant one production site of ``scenario``; its signals are added to ``b``."""
    rng = b.rng
    rural = scenario == "cannabis_rural" or (scenario == "synthetic" and rng.random() < 0.5)
    place = _weighted_place(b, rural=rural)
    site = b.locations.new(place, rural=rural)
    drug: Drug = "synthetic" if scenario == "synthetic" else "cannabis"
    strong = Subject(place, "strong", drug, site)
    named = _first_hand(b, scenario, strong, rural=rural)
    nearby: list[Draft | None] = []
    if drug == "synthetic":
        if rng.random() < 0.7:
            street = Subject(place, "strong", drug, postcode=b.locations.nearby(site))
            nearby.append(_report(b, _WASTE, street, (0.4, 1.0)))
        nearby.append(_report(b, "water.sewer_contamination_spike.v1", strong, (0.3, 1.0)))
    elif rng.random() < 0.3:
        nearby.append(_report(b, "energy.area_load_peak.v1", strong, (0.3, 1.0)))
    return _truth(
        number,
        site,
        drug=drug,
        rural=rural,
        named=[d for d in named if d],
        nearby=[d for d in nearby if d],
    )


def _first_hand(
    b: Builder, scenario: Scenario, strong: Subject, *, rural: bool
) -> list[Draft | None]:
    """The signals that name the site itself: at least three partner kinds' worth."""
    rng, place = b.rng, strong.place
    named: list[Draft | None] = []
    if scenario == "synthetic":
        buyer = Subject(
            place, "strong", strong.drug, strong.location, buyer=new_buyer(rng, front=True)
        )
        named += [_report(b, _PRECURSOR, buyer, (0.0, 0.5)) for _ in range(rng.randint(1, 3))]
    if rural:
        named.append(_report(b, _BARN, strong, (0.0, 0.3)))
    for _ in range(rng.choice((1, 1, 2))):
        named.append(_report(b, _ENERGY, strong, (0.3 if rural else 0.15, 1.0)))
    if rng.random() < (0.2 if scenario == "synthetic" else 0.4):
        extra = rng.choice(("energy.meter_tampering.v1", "energy.illegal_connection.v1"))
        named.append(_report(b, extra, strong, (0.3, 1.0)))
    extras = [_WATER, _TIP]
    if not rural and b.sender(_HOUSING, place) is not None:
        extras.append(_HOUSING)
    # energy plus two more kinds for a grow room in a home; rural and synthetic sites already
    # have a second kind (the farmers' hotline, the chemicals trader) and need one more
    if scenario == "cannabis_urban":
        wanted = 3 if len(extras) > 2 and rng.random() < 0.4 else 2
    else:
        wanted = 1 if rng.random() < 0.6 else 2
    for signal_type in rng.sample(extras, wanted):
        for _ in range(1 if rng.random() < 0.7 else 2):
            named.append(_report(b, signal_type, strong, (0.2, 1.0)))
    if scenario == "synthetic" and rng.random() < 0.3:  # waste left on the premises itself
        named.append(_report(b, _WASTE, strong, (0.4, 1.0)))
    return named


def _truth(
    number: int, site: Location, *, drug: Drug, rural: bool, named: list[Draft], nearby: list[Draft]
) -> PlantedLocation:
    times = sorted(d.time for d in named + nearby)
    return PlantedLocation(
        id=f"planted-{number:03d}",
        kind=drug,
        setting="rural" if rural else "urban",
        municipality=site.municipality.code,
        address=site.address,
        bag=site.bag,
        ean=site.ean,
        partner_kinds=tuple(sorted({d.partner.kind for d in named})),
        signal_types=tuple(sorted({d.type for d in named})),
        signal_ids=tuple(d.id for d in named),
        nearby_signal_ids=tuple(d.id for d in nearby),
        first_seen=rfc3339(times[0], TimeStyle.UTC),
        last_seen=rfc3339(times[-1], TimeStyle.UTC),
    )


def plant_decoy(b: Builder) -> Decoy:
    """Plant one decoy location (two weak signals), alternating between the two reasons."""
    rng = b.rng
    place = _weighted_place(b, rural=False)
    site = b.locations.new(place)
    weak = Subject(place, "weak", None, site)
    drafts: list[Draft]
    if rng.random() < 0.5:
        signal_type = rng.choice((_ENERGY, _WATER))
        sender = partner("liander" if signal_type == _ENERGY else "pwn")
        drafts = [b.emit(sender, signal_type, weak) for _ in range(2)]
        reason: Literal["same_kind_repeated", "two_kinds_weak"] = "same_kind_repeated"
    else:
        second = rng.choice((_WATER, _TIP))
        drafts = [b.emit(partner("liander"), _ENERGY, weak)]
        drafts.append(b.emit(partner("pwn" if second == _WATER else "meld-misdaad-anoniem"),
                             second, weak))  # fmt: skip
        reason = "two_kinds_weak"
    return Decoy(
        reason=reason,
        municipality=place.code,
        address=site.address,
        partner_kinds=tuple(sorted({d.partner.kind for d in drafts})),
        signal_ids=tuple(d.id for d in drafts),
    )
