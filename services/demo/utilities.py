"""Signals from the utilities: Liander (electricity), PWN (drinking water), HHNK (sewers).

Energy companies may not pass raw smart-meter readings, so every energy signal is a derived
flag: a consumption anomaly with a score, tampering, an illegal connection, or an area load
peak over at least 10 connections. Water companies flag abnormal use per connection; the
water board measures drugs and precursors at sewer sampling points, which says something
about an area, never about one address.
"""

from __future__ import annotations

from datetime import datetime
from random import Random
from typing import Any

from services.demo.geography import Municipality
from services.demo.identities import write_address, write_bag, write_ean
from services.demo.partners import Partner
from services.demo.signals import Subject, area_of, before, location_of, period, pick, strength

__all__ = [
    "area_load_peak",
    "consumption_anomaly",
    "illegal_connection",
    "meter_tampering",
    "sewer_spike",
    "water_abnormal_use",
]

# Weighted choices. "strong" tables describe production sites, the others everyday causes.
_GROW_PATTERNS = {"cycle_12_12": 0.55, "cycle_18_6": 0.3, "continuous_high": 0.15}
_LAB_PATTERNS = {"continuous_high": 0.6, "sudden_increase": 0.4}
_EVERYDAY_PATTERNS: dict[str | None, float] = {
    "other": 0.35, "sudden_increase": 0.25, "continuous_high": 0.2, "cycle_12_12": 0.03,
    "cycle_18_6": 0.02, None: 0.15,
}  # fmt: skip
_TAMPERING_STRONG = {"meter_bypass": 0.5, "seal_broken": 0.25, "meter_reversed": 0.15,
                     "magnet": 0.1}  # fmt: skip
_TAMPERING_EVERYDAY = {"communication_blocked": 0.35, "seal_broken": 0.25, "magnet": 0.15,
                       "other": 0.15, "meter_bypass": 0.1}  # fmt: skip
_DETECTION_STRONG = {"field_inspection": 0.5, "grid_balance_check": 0.3, "remote_alarm": 0.2}
_DETECTION_EVERYDAY = {"remote_alarm": 0.45, "meter_exchange": 0.25, "field_inspection": 0.2,
                       "grid_balance_check": 0.1}  # fmt: skip
_TAP_STRONG = {"tap_before_meter": 0.6, "tap_public_cable": 0.3, "unregistered_connection": 0.1}
_TAP_EVERYDAY = {"unregistered_connection": 0.35, "tap_neighbour": 0.3, "tap_before_meter": 0.2,
                 "tap_public_cable": 0.15}  # fmt: skip
_WATER_GROW = {"night_use": 0.3, "continuous_flow": 0.4, "sudden_increase": 0.2,
               "meter_bypass_suspected": 0.1}  # fmt: skip
_WATER_LAB = {"continuous_flow": 0.7, "sudden_increase": 0.3}
_WATER_EVERYDAY: dict[str | None, float] = {
    "continuous_flow": 0.35, "other": 0.25, "sudden_increase": 0.2, "night_use": 0.1, None: 0.1,
}  # fmt: skip
_SEWER_STRONG = {"amphetamine": 0.3, "mdma": 0.25, "bmk": 0.15, "pmk": 0.1, "apaan": 0.1,
                 "formamide": 0.1}  # fmt: skip
_SEWER_EVERYDAY = {"mdma": 0.3, "amphetamine": 0.3, "methamphetamine": 0.05, "bmk": 0.1,
                   "pmk": 0.05, "other_precursor": 0.2}  # fmt: skip


def consumption_anomaly(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """Liander's derived flag: take-off over a period against the profile of similar homes."""
    site = location_of(s)
    days = rng.choice((7, 14, 28, 28, 30))
    per_day = rng.uniform(15, 60) if site.rural else rng.uniform(5, 12)
    score = strength(rng, s, 0.8)
    pattern: str | None
    if s.strong and s.drug == "cannabis":
        ratio, pattern = rng.uniform(3, 9), pick(rng, _GROW_PATTERNS)
    elif s.strong:
        ratio, pattern = rng.uniform(2, 4.5), pick(rng, _LAB_PATTERNS)
    else:  # a fifth are drops (empty homes), the rest rises roughly in line with the score
        ratio = rng.uniform(0.2, 0.7) if rng.random() < 0.2 else 1 + score * rng.uniform(0.4, 1.8)
        pattern = pick(rng, _EVERYDAY_PATTERNS)
    data: dict[str, Any] = {"ean": write_ean(rng, site.ean)}
    if s.level != "noise" or rng.random() < 0.85:
        data["address"] = write_address(rng, site, sender.address_style)
    data |= {
        "municipality": s.place.code,
        "score": score,
        "period": period(at, days),
        "kwh_expected": round(per_day * days, 1),
        "kwh_observed": round(per_day * days * ratio, 1),
    }
    if pattern is not None:
        data["pattern"] = pattern
    return data


def meter_tampering(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """A tampered meter: strong ones are bypasses seen on site, noise mostly remote alarms."""
    site = location_of(s)
    unmetered: float | None
    if s.strong:
        kind, detection = pick(rng, _TAMPERING_STRONG), pick(rng, _DETECTION_STRONG)
        on_site = detection == "field_inspection"
        confidence = rng.uniform(0.9, 1.0) if on_site else rng.uniform(0.75, 0.9)
        unmetered = rng.uniform(2000, 15000)
    else:
        kind, detection = pick(rng, _TAMPERING_EVERYDAY), pick(rng, _DETECTION_EVERYDAY)
        confidence = rng.uniform(0.2, 0.4) if s.level == "weak" else rng.uniform(0.1, 0.85)
        unmetered = rng.uniform(0, 800) if rng.random() < 0.5 else None
    data: dict[str, Any] = {"ean": write_ean(rng, site.ean)}
    if s.level != "noise" or rng.random() < 0.7:
        data["address"] = write_address(rng, site, sender.address_style)
    data |= {
        "municipality": s.place.code,
        "tampering_kind": kind,
        "detection": detection,
        "confidence": round(confidence, 2),
        "detected_at": before(rng, sender, at, 1, 48),
    }
    if unmetered is not None:
        data["estimated_kwh_unmetered"] = round(unmetered)
    return data


def illegal_connection(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """Power taken outside a registered connection: grow rooms tap before the meter."""
    site = location_of(s)
    kind = pick(rng, _TAP_STRONG if s.strong else _TAP_EVERYDAY)
    load = rng.uniform(8, 40) if s.strong else rng.uniform(0.5, 6)
    data: dict[str, Any] = {"address": write_address(rng, site, sender.address_style)}
    if kind != "unregistered_connection" and (s.strong or rng.random() < 0.6):
        data["ean"] = write_ean(rng, site.ean)
    data |= {
        "municipality": s.place.code,
        "connection_kind": kind,
        "discovered_at": before(rng, sender, at, 1, 48),
    }
    if rng.random() < 0.8:
        data["estimated_load_kw"] = round(load, 1)
    data["confirmed_on_site"] = rng.random() < (0.7 if s.strong else 0.55)
    return data


def area_load_peak(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """Load in a postcode area above what its connections explain (no personal data)."""
    peak = rng.uniform(1.4, 2.2) if s.strong else rng.uniform(1.05, 1.5)
    data: dict[str, Any] = {
        "postcode4": area_of(s),
        "municipality": s.place.code,
        "period": period(at, rng.choice((7, 14))),
        "peak_ratio": round(peak, 2),
    }
    if rng.random() < 0.8:
        score = rng.uniform(0.6, 0.9) if s.strong else rng.betavariate(2, 5)
        data["score"] = round(score, 3)
    data["connection_count"] = rng.randrange(10, 150) if s.strong else rng.randrange(10, 2500)
    return data


def water_abnormal_use(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """PWN's flag: irrigation and cooling show as night use or continuous flow."""
    site = location_of(s)
    days = rng.choice((14, 28, 28, 31))
    per_day = rng.uniform(0.5, 3) if site.rural else rng.uniform(0.15, 0.45)
    score = strength(rng, s, 0.76)
    pattern: str | None
    if s.strong and s.drug == "cannabis":
        ratio, pattern = rng.uniform(2, 5), pick(rng, _WATER_GROW)
    elif s.strong:
        ratio, pattern = rng.uniform(4, 15), pick(rng, _WATER_LAB)
    else:  # leaks are the everyday cause of continuous flow
        ratio, pattern = 1 + score * rng.uniform(0.3, 2.5), pick(rng, _WATER_EVERYDAY)
    data: dict[str, Any] = {"address": write_address(rng, site, sender.address_style)}
    if rng.random() < (0.9 if s.strong else 0.6):
        data["bag"] = write_bag(rng, site.bag)
    data |= {
        "municipality": s.place.code,
        "score": score,
        "period": period(at, days),
        "m3_expected": round(per_day * days, 2),
        "m3_observed": round(per_day * days * ratio, 2),
    }
    if pattern is not None:
        data["pattern"] = pattern
    return data


def _sampling_point(place: Municipality, area: str) -> str:
    """The water board's id of the pumping station sampled, e.g. ``hhnk.alkmaar.gemaal-1816``."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in place.name.lower()).split())
    return f"hhnk.{slug}.gemaal-{area}"


def sewer_spike(rng: Random, sender: Partner, s: Subject, at: datetime) -> dict[str, Any]:
    """A water board's sewer sample: a lab dumping upstream shows as a many-fold spike."""
    area = area_of(s)
    if s.strong:
        substance = pick(rng, _SEWER_STRONG)
        concentration, unit, ratio = rng.uniform(2, 60), "ug_per_l", rng.uniform(12, 80)
    else:
        substance = pick(rng, _SEWER_EVERYDAY)
        concentration, unit, ratio = rng.uniform(50, 900), "ng_per_l", rng.uniform(1.5, 5)
    data: dict[str, Any] = {
        "sampling_point": _sampling_point(s.place, area),
        "postcode4": area,
        "municipality": s.place.code,
        "substance": substance,
        "concentration": round(concentration, 1),
        "unit": unit,
    }
    if rng.random() < 0.85:
        data["baseline_ratio"] = round(ratio, 1)
    data["measured_at"] = before(rng, sender, at, 24, 120)
    return data
