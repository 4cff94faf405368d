"""Signals reported by people: housing staff, waste collectors, farmers, residents, traders.

These carry what someone saw (smell, taped windows, barrels in a ditch, a cash offer for a
barn, a buyer who pays a precursor in cash) rather than a measurement, so most have no score;
housing observations carry the observer's confidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from random import Random
from typing import Any

from services.demo.identities import (
    company_name,
    kvk_number,
    nl_iban,
    plate,
    write_address,
    write_bag,
    write_postcode,
)
from services.demo.partners import Partner
from services.demo.signals import Buyer, Subject, before, location_of, pick

__all__ = [
    "anonymous_tip",
    "barn_approach",
    "housing_observation",
    "new_buyer",
    "precursor_transaction",
    "waste_dumping",
]

# Weighted choices. "strong" tables describe production sites, the others everyday causes.
_GROW_SIGNS = {
    "smell_cannabis": 3.0, "taped_windows": 2.0, "blinded_windows": 1.5,
    "ventilation_noise": 2.0, "heat": 1.5, "condensation": 1.5, "rarely_occupied": 1.0,
    "electricity_tampering": 0.5, "modified_ventilation": 1.0,
}  # fmt: skip
_LAB_SIGNS = {
    "smell_chemical": 3.0, "modified_ventilation": 2.0, "waste_containers": 2.0,
    "frequent_visitors": 1.0, "blinded_windows": 1.0, "rarely_occupied": 1.0,
}  # fmt: skip
_WEAK_SIGNS = {"rarely_occupied": 1.0, "frequent_visitors": 1.0, "condensation": 1.0}
_EVERYDAY_SIGNS = {
    "rarely_occupied": 3.0, "frequent_visitors": 2.5, "condensation": 2.0,
    "waste_containers": 1.5, "blinded_windows": 1.0, "smell_cannabis": 1.0,
    "ventilation_noise": 0.8, "heat": 0.4, "smell_chemical": 0.3,
}  # fmt: skip
_OBSERVERS = {"caretaker": 0.4, "maintenance": 0.25, "neighbourhood_manager": 0.25,
              "inspector": 0.05, "other": 0.05}  # fmt: skip
_WASTE_KINDS = {"barrels": 0.3, "jerrycans": 0.3, "liquid_dumped": 0.15, "solid_residue": 0.1,
                "lab_equipment": 0.05, "mixed": 0.1}  # fmt: skip
_APPROACHES = {"in_person": 0.45, "letter": 0.2, "phone": 0.15, "intermediary": 0.15,
               "online": 0.05}  # fmt: skip
_REQUESTED_USES = {"storage": 0.45, "vehicle_storage": 0.25, "workshop": 0.1, "unspecified": 0.2}
_TIPS_GROW = {"cannabis_cultivation": 0.85, "drug_storage": 0.15}
_TIPS_LAB = {"drug_lab": 0.7, "drug_waste": 0.15, "drug_storage": 0.15}
_TIPS_EVERYDAY = {"cannabis_cultivation": 0.3, "drug_dealing": 0.3, "drug_storage": 0.1,
                  "money_laundering": 0.1, "other": 0.1, "drug_lab": 0.05,
                  "drug_waste": 0.05}  # fmt: skip
_TIP_CHANNELS = {"phone": 0.45, "web_form": 0.45, "app": 0.05, "letter": 0.03, "in_person": 0.02}
_PAYMENT_FRONT = {"cash": 0.6, "crypto": 0.15, "bank_transfer": 0.25}
_PAYMENT_EVERYDAY = {"bank_transfer": 0.55, "card": 0.2, "cash": 0.2, "other": 0.05}
_CHEMICALS_EVERYDAY = {"acetone": 0.25, "hydrochloric_acid": 0.15, "sulfuric_acid": 0.15,
                       "sodium_hydroxide": 0.15, "formic_acid": 0.1, "red_phosphorus": 0.03,
                       "methylamine": 0.03, "other": 0.14}  # fmt: skip
_SOLIDS = frozenset({"bmk_glycidate", "pmk_glycidate", "apaan", "mapa", "red_phosphorus",
                     "sodium_hydroxide"})  # fmt: skip
_PRECURSORS = ("bmk_glycidate", "pmk_glycidate", "apaan", "mapa", "formamide", "methylamine",
               "nitroethane", "safrole", "bmk", "pmk")  # fmt: skip
_BULK = ("hydrochloric_acid", "sulfuric_acid", "sodium_hydroxide", "acetone", "formic_acid")


def _signs(rng: Random, options: Mapping[str, float], count: int) -> list[str]:
    chosen: list[str] = []
    while len(chosen) < count:
        sign = pick(rng, options)
        if sign not in chosen:
            chosen.append(sign)
    return chosen


def housing_observation(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """A caretaker's or neighbourhood manager's note; strong ones combine several signs."""
    site = location_of(s)
    confidence: float | None
    if s.strong:
        signs = _signs(rng, _GROW_SIGNS if s.drug == "cannabis" else _LAB_SIGNS, rng.randint(2, 4))
        confidence = rng.uniform(0.7, 0.95)
    elif s.level == "weak":
        signs, confidence = _signs(rng, _WEAK_SIGNS, 1), rng.uniform(0.2, 0.4)
    else:
        signs = _signs(rng, _EVERYDAY_SIGNS, 1 if rng.random() < 0.75 else 2)
        confidence = rng.uniform(0.15, 0.65) if rng.random() < 0.85 else None
    data: dict[str, Any] = {"address": write_address(rng, site, sender.address_style)}
    if rng.random() < 0.7:
        data["bag"] = write_bag(rng, site.bag)
    data |= {
        "municipality": s.place.code,
        "observations": signs,
        "observer_role": pick(rng, _OBSERVERS),
    }
    if confidence is not None:
        data["confidence"] = round(confidence, 2)
    data["observed_at"] = before(rng, sender, at, 0.2, 72)
    return data


def waste_dumping(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """Dumped drug waste, on a premises (address) or in the open (nearest postcode)."""
    data: dict[str, Any] = {}
    if s.location is not None:
        data["address"] = write_address(rng, s.location, sender.address_style)
    elif s.postcode is not None:
        data["postcode"] = write_postcode(rng, s.postcode)
    else:
        raise ValueError("waste dumping needs an address or a postcode")
    kind = pick(rng, _WASTE_KINDS)
    data |= {"municipality": s.place.code, "waste_kind": kind}
    if rng.random() < 0.8:
        data["volume_litres"] = round(rng.uniform(20, 2000 if s.strong else 1200))
    if kind in ("barrels", "jerrycans", "mixed"):
        data["container_count"] = rng.randrange(1, 60)
    data["found_at"] = before(rng, sender, at, 0.5, 30)
    if rng.random() < 0.08:
        data["vehicle_plate"] = plate(rng)
    return data


def barn_approach(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """A farmer's report of a suspicious offer to rent a barn (Schimmige Schuren)."""
    site = location_of(s)
    data: dict[str, Any] = {"address": write_address(rng, site, sender.address_style)}
    if rng.random() < 0.7:
        data["bag"] = write_bag(rng, site.bag)
    data |= {"municipality": s.place.code, "approach_kind": pick(rng, _APPROACHES)}
    if rng.random() < 0.85:
        data["requested_use"] = pick(rng, _REQUESTED_USES)
    if rng.random() < 0.7:
        rent = rng.uniform(2000, 8000) if s.strong else rng.uniform(500, 4000)
        data["offered_rent_eur_month"] = round(rent, -2)
    if rng.random() < 0.9:
        data["cash_offered"] = rng.random() < (0.8 if s.strong else 0.5)
    if rng.random() < (0.6 if s.strong else 0.3):
        data["vehicle_plate"] = plate(rng)
    data["approached_at"] = before(rng, sender, at, 2, 240)
    return data


def anonymous_tip(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """A resident's tip: category, usually an address, and nothing about the reporter."""
    if s.strong:
        category = pick(rng, _TIPS_GROW if s.drug == "cannabis" else _TIPS_LAB)
    else:
        category = pick(rng, _TIPS_EVERYDAY)
    data: dict[str, Any] = {"category": category}
    if s.location is not None:
        data["address"] = write_address(rng, s.location, sender.address_style)
    data |= {
        "municipality": s.place.code,
        "received_at": before(rng, sender, at, 0.2, 48),
        "channel": pick(rng, _TIP_CHANNELS),
    }
    return data


def new_buyer(rng: Random, *, front: bool) -> Buyer:
    """A customer record: a front company pays cash or crypto, a real firm mostly by bank."""
    payment = pick(rng, _PAYMENT_FRONT if front else _PAYMENT_EVERYDAY)
    kvk = kvk_number(rng) if rng.random() < (0.5 if front else 0.85) else None
    iban = nl_iban(rng) if payment == "bank_transfer" and rng.random() < 0.8 else None
    return Buyer(company_name(rng, front=front), kvk, iban, payment)


def precursor_transaction(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """An unusual sale reported by a chemicals trader (EU precursor regulations)."""
    site = location_of(s)
    buyer = s.buyer or new_buyer(rng, front=False)
    if s.strong:
        substance = rng.choice(_PRECURSORS) if rng.random() < 0.6 else rng.choice(_BULK)
        quantity = rng.uniform(25, 1000)
    else:
        substance, quantity = pick(rng, _CHEMICALS_EVERYDAY), rng.uniform(5, 400)
    data: dict[str, Any] = {}
    if buyer.kvk is not None:
        data["buyer_kvk"] = buyer.kvk
    data |= {
        "buyer_name": buyer.name,
        "delivery_address": write_address(rng, site, sender.address_style),
        "municipality": s.place.code,
        "substance": substance,
        "quantity": round(quantity, 1),
        "unit": "kg" if substance in _SOLIDS else "l",
        "transaction_at": before(rng, sender, at, 1, 120),
        "payment_method": buyer.payment,
    }
    if buyer.iban is not None:
        data["iban"] = buyer.iban
    return data
