"""The simulated partners: who sends which signal types, where, when, and in what format.

Partner ids, kinds and signal types follow the covenant files (``covenants/**/*.yaml``): only
a party that signs as supplier, of a kind the signal's schema allows (``x-partner-kinds``),
and named in a rule for that type is used as a source. Service areas follow the real
organisations: PWN supplies drinking water outside Amsterdam and Het Gooi, the water board
Hollands Noorderkwartier (HHNK) samples sewers north of the North Sea Canal, Woonwaard lets
homes in Alkmaar and Heiloo, Elan Wonen in Haarlem, and a municipality reports drug waste
found on its own territory.
"""

from __future__ import annotations

from dataclasses import dataclass
from random import Random

from services.demo.geography import MUNICIPALITIES, Municipality
from services.demo.timing import TimeStyle

__all__ = ["PARTNERS", "TYPE_WEIGHTS", "Partner", "partner", "pick_place", "senders"]


@dataclass(frozen=True, slots=True)
class Partner:
    """One simulated partner system."""

    id: str
    kind: str
    types: tuple[str, ...]
    serves: frozenset[str]
    """CBS codes of the municipalities the partner reports about."""
    share: float
    """Relative share of its signal types this partner sends when several partners can."""
    hours: tuple[int, int]
    """Local hours ``[from, until)`` in which its system publishes."""
    weekdays: int
    """7: every day (batch jobs, tip line); 6: Monday-Saturday; 5: office days."""
    time_style: TimeStyle
    address_style: int
    """Its system's usual address spelling (see :func:`identities.write_address`)."""


def _codes(*, exclude_regions: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> frozenset[str]:
    return frozenset(
        m.code
        for m in MUNICIPALITIES
        if m.safety_region not in exclude_regions and (not only or m.code in only)
    )


_ALL = _codes()
_NOT_AMSTERDAM_OR_GOOI = _codes(exclude_regions=("Gooi en Vechtstreek",)) - {
    "GM0363",  # Amsterdam, Diemen and Ouder-Amstel get their water from Waternet
    "GM0384",
    "GM0437",
}
_RIEC_NH = frozenset(m.code for m in MUNICIPALITIES if m.in_riec_nh)
_NORTH_OF_CANAL = _RIEC_NH - {
    "GM0377",  # Bloemendaal, Haarlem, Haarlemmermeer, Heemstede, Velsen, Zandvoort: Rijnland
    "GM0392",
    "GM0394",
    "GM0397",
    "GM0453",
    "GM0473",
}
_RURAL = frozenset(m.code for m in MUNICIPALITIES if m.rural >= 1 and m.in_riec_nh)

_CONSUMPTION = "energy.consumption_anomaly.v1"
_TAMPERING = "energy.meter_tampering.v1"
_ILLEGAL = "energy.illegal_connection.v1"
_AREA_PEAK = "energy.area_load_peak.v1"
_WATER = "water.abnormal_use.v1"
_SEWER = "water.sewer_contamination_spike.v1"
_HOUSING = "housing.observation.v1"
_WASTE = "waste.drug_waste_dumping.v1"
_BARN = "rural.barn_rental_approach.v1"
_TIP = "residents.anonymous_tip.v1"
_PRECURSOR = "chemicals.precursor_transaction.v1"

_LOCAL, _UTC, _UTC_MS = TimeStyle.LOCAL, TimeStyle.UTC, TimeStyle.UTC_MS

PARTNERS: tuple[Partner, ...] = (
    Partner("liander", "energy", (_CONSUMPTION, _TAMPERING, _ILLEGAL, _AREA_PEAK), _ALL, 1.0,
            (1, 5), 7, _UTC_MS, 4),
    Partner("pwn", "water", (_WATER,), _NOT_AMSTERDAM_OR_GOOI, 1.0, (5, 8), 7, _LOCAL, 1),
    Partner("hhnk", "water", (_SEWER,), _NORTH_OF_CANAL, 1.0, (8, 17), 5, _UTC, 1),
    Partner("woonwaard", "housing", (_HOUSING,), _codes(only=("GM0361", "GM0399")), 0.55,
            (8, 17), 5, _LOCAL, 0),
    Partner("elan-wonen", "housing", (_HOUSING,), _codes(only=("GM0392",)), 0.45,
            (8, 17), 5, _UTC, 0),
    Partner("hvc", "waste", (_WASTE,), _RIEC_NH, 0.6, (7, 16), 5, _LOCAL, 0),
    Partner("gemeente-alkmaar", "municipality", (_WASTE,), _codes(only=("GM0361",)), 0.15,
            (8, 17), 5, _LOCAL, 0),
    Partner("gemeente-zaanstad", "municipality", (_WASTE,), _codes(only=("GM0479",)), 0.15,
            (8, 17), 5, _LOCAL, 6),
    Partner("gemeente-haarlem", "municipality", (_WASTE,), _codes(only=("GM0392",)), 0.1,
            (8, 17), 5, _UTC, 0),
    Partner("lto-meldpunt", "rural", (_BARN,), _RURAL, 1.0, (7, 21), 6, _LOCAL, 0),
    Partner("meld-misdaad-anoniem", "residents", (_TIP,), _ALL, 1.0, (0, 24), 7, _UTC, 2),
    Partner("chemiehandel-nh", "chemicals", (_PRECURSOR,), _ALL, 1.0, (8, 18), 5, _LOCAL, 0),
)  # fmt: skip

TYPE_WEIGHTS: dict[str, float] = {
    _CONSUMPTION: 30.0,
    _HOUSING: 14.0,
    _WATER: 12.0,
    _TIP: 10.0,
    _WASTE: 7.5,
    _BARN: 6.5,
    _TAMPERING: 3.5,
    _ILLEGAL: 2.0,
    _AREA_PEAK: 3.0,
    _SEWER: 3.0,
    _PRECURSOR: 2.5,
}
"""Background mix by signal type: energy anomalies most frequent, precursor sales rarest."""

_BY_ID = {p.id: p for p in PARTNERS}


def partner(partner_id: str) -> Partner:
    """The simulated partner with ``partner_id``."""
    return _BY_ID[partner_id]


def senders(signal_type: str, place: Municipality | None = None) -> list[Partner]:
    """Partners that send ``signal_type`` (about ``place``, when given), in table order."""
    return [
        p for p in PARTNERS if signal_type in p.types and (place is None or place.code in p.serves)
    ]


def pick_place(rng: Random, sender: Partner, *, rural: bool = False) -> Municipality:
    """A municipality ``sender`` reports about, weighted by population (or by farmland).

    Municipalities outside RIEC Noord-Holland count for a third: the covenants are about
    RIEC Noord-Holland, but partners such as Liander also report from the rest of the
    province, and those signals must be withheld by the rules, which the demo should show.
    """
    places = [m for m in MUNICIPALITIES if m.code in sender.serves and (m.rural or not rural)]
    weights = [
        (m.rural if rural else m.population_k) * (1.0 if m.in_riec_nh else 0.33) for m in places
    ]
    return rng.choices(places, weights)[0]
