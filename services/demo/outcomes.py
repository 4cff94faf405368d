"""What came of the demo's signals: police findings weeks later, checks that found nothing, the
OM's approvals, and the measures that follow (docs/outcomes.md).

Realistic proportions, as the covenant genre describes them: **most signals lead nowhere**.

* a planted production site is searched and cleared (*geruimd*) 2 to 8 weeks after its last
  signal in 70 % of cases (the rest is not cleared yet); the OM approves the returns of most
  findings within days, refuses a few, and leaves some undecided; the mayor of a municipality
  that is a party closes the premises (Opiumwet art. 13b), the housing corporation that lets
  it ends the lease, the grid operator claims the stolen energy, UWV reviews benefits;
* half of the decoys get a police visit that finds nothing;
* 1.5 % of the other signals that name a premises get a check that finds nothing;
* dumped drug waste found at a premises is cleaned up by the environmental service.

Deterministic like the generator: one ``random.Random`` seeded from the traffic's seed (and
kept apart from the generator's own stream, so traffic without outcomes is unchanged), fixed
partner tables, orjson. Every outcome is signed with its source's TEST key.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.demo.builder import SCHEMA_URI_PREFIX
from services.demo.keys import DemoSigner
from services.demo.planting import Decoy, PlantedLocation
from services.demo.timing import TimeStyle, rfc3339

__all__ = ["OUTCOME_PARTNERS", "OutcomeTruth", "demo_outcomes"]

POLICE, OM, UWV, ENVIRONMENT, GRID = "politie-nh", "om-nh", "uwv", "odnhn", "liander"
MAYORS = {"GM0361": "gemeente-alkmaar", "GM0479": "gemeente-zaanstad", "GM0392": "gemeente-haarlem"}
"""Municipalities that are parties of the covenant (their mayor decides closures)."""
LANDLORDS = {"GM0361": "woonwaard", "GM0399": "woonwaard", "GM0392": "elan-wonen"}
OUTCOME_PARTNERS = (POLICE, OM, UWV, ENVIRONMENT, *sorted(set(MAYORS.values())))
"""Partners that publish outcomes in the demo (besides housing corporations and Liander)."""

CLEARED = 0.7
DECOY_CHECKED = 0.5
BACKGROUND_CHECKED = 0.015
_PREMISES_TYPES = frozenset(
    {
        "energy.consumption_anomaly.v1",
        "energy.meter_tampering.v1",
        "energy.illegal_connection.v1",
        "water.abnormal_use.v1",
        "housing.observation.v1",
        "residents.anonymous_tip.v1",
        "rural.barn_rental_approach.v1",
        "waste.drug_waste_dumping.v1",
    }
)


@dataclass(frozen=True, slots=True)
class OutcomeTruth:
    """Which planted site, decoy or background signal an outcome is about (test data)."""

    signal_id: str
    type: str
    time: str
    about: str
    """``planted-NNN``, ``decoy`` or ``background``."""

    def as_dict(self) -> dict[str, str]:
        return {"id": self.signal_id, "type": self.type, "time": self.time, "about": self.about}


@dataclass
class _Made:
    rng: random.Random
    drafts: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)
    truth: list[OutcomeTruth] = field(default_factory=list)

    def emit(self, source: str, signal_type: str, at: datetime, data: dict[str, Any],
             about: str) -> dict[str, Any]:  # fmt: skip
        signal_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        time = rfc3339(at, TimeStyle.UTC)
        envelope: dict[str, Any] = {
            "specversion": "1.0",
            "id": signal_id,
            "source": source,
            "type": signal_type,
            "time": time,
            "dataschema": SCHEMA_URI_PREFIX + signal_type,
            "datacontenttype": "application/json",
            "data": data,
        }
        self.drafts.append((at, envelope))
        self.truth.append(OutcomeTruth(signal_id, signal_type, time, about))
        return envelope


def demo_outcomes(
    seed: int,
    signals: Sequence[dict[str, Any]],
    planted: Iterable[PlantedLocation],
    decoys: Iterable[Decoy],
) -> tuple[list[dict[str, Any]], list[OutcomeTruth]]:
    """The signed outcome envelopes (in time order) for the given traffic, and their truth."""
    made = _Made(random.Random(f"schakel-demo-outcomes:{seed}"))  # noqa: S311 - test data
    by_id = {e["id"]: e for e in signals}
    for site in planted:
        if made.rng.random() < CLEARED:
            _clear(made, site, by_id)
    for decoy in decoys:
        if made.rng.random() < DECOY_CHECKED:
            times = [_time(by_id[i]) for i in decoy.signal_ids if i in by_id]
            if times:
                at = max(times) + timedelta(days=made.rng.uniform(7, 40))
                _nothing(made, decoy.municipality, {"address": decoy.address}, at, "decoy")
    named = {i for site in planted for i in site.signal_ids}
    named |= {i for decoy in decoys for i in decoy.signal_ids}
    for envelope in signals:
        if envelope["id"] in named or envelope["type"] not in _PREMISES_TYPES:
            continue
        data = envelope["data"]
        address = data.get("address") or data.get("delivery_address")
        if not address:
            continue
        if envelope["type"] == "waste.drug_waste_dumping.v1" and made.rng.random() < 0.7:
            _cleanup(made, envelope, address)
        elif made.rng.random() < BACKGROUND_CHECKED:
            at = _time(envelope) + timedelta(days=made.rng.uniform(5, 60))
            _nothing(made, data["municipality"], {"address": address}, at, "background")
    made.drafts.sort(key=lambda d: (d[0], d[1]["id"]))
    sign = DemoSigner()
    return [sign(envelope) for _, envelope in made.drafts], made.truth


def _time(envelope: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(envelope["time"]))


def _clear(made: _Made, site: PlantedLocation, by_id: dict[str, dict[str, Any]]) -> None:
    rng = made.rng
    last = datetime.fromisoformat(site.last_seen)
    found_at = last + timedelta(days=rng.uniform(14, 56), hours=rng.uniform(-3, 3))
    types = {by_id[i]["type"] for i in site.signal_ids if i in by_id}
    tampered = bool(types & {"energy.meter_tampering.v1", "energy.illegal_connection.v1"})
    cannabis = site.kind == "cannabis"
    bypassed = tampered or (cannabis and rng.random() < 0.6)
    data: dict[str, Any] = {"address": site.address, "bag": site.bag}
    if rng.random() < 0.5:
        data["ean"] = site.ean
    data.update(
        {
            "municipality": site.municipality,
            "finding": "cannabis_grow" if cannabis
            else ("drug_storage" if rng.random() < 0.2 else "synthetic_lab"),
            "found_at": rfc3339(found_at, TimeStyle.UTC),
            "dismantled": rng.random() < 0.92,
            "meter_bypassed": bypassed,
            "water_bypassed": rng.random() < 0.2,
        }
    )  # fmt: skip
    if cannabis:
        data["plants"] = rng.randrange(150, 900)
    finding = made.emit(POLICE, "police.location_finding.v1", found_at, data, site.id)
    decision = rng.random()
    if decision < 0.95:
        made.emit(
            OM,
            "prosecution.case_approval.v1",
            found_at + timedelta(days=rng.uniform(1, 10)),
            {
                "municipality": site.municipality,
                "outcome_source": POLICE,
                "outcome_signal_id": finding["id"],
                "decision": "approved" if decision < 0.85 else "refused",
                "decided_at": rfc3339(found_at + timedelta(days=1), TimeStyle.UTC),
            },
            site.id,
        )
    _measures(made, site, found_at, bypassed)


def _measures(made: _Made, site: PlantedLocation, found_at: datetime, bypassed: bool) -> None:
    rng = made.rng
    premises = {"address": site.address, "bag": site.bag}
    mayor = MAYORS.get(site.municipality)
    if mayor is not None and rng.random() < 0.8:
        at = found_at + timedelta(days=rng.uniform(7, 21))
        made.emit(
            mayor,
            "municipality.closure_order.v1",
            at,
            {**premises, "municipality": site.municipality,
             "measure": "closure" if rng.random() < 0.8 else "warning",
             "ground": "art_13b_1a" if rng.random() < 0.7 else "art_13b_1b",
             "closure_months": rng.choice((3, 6, 6, 12)),
             "decided_at": rfc3339(at, TimeStyle.UTC)},
            site.id,
        )  # fmt: skip
    landlord = LANDLORDS.get(site.municipality)
    if landlord is not None and site.setting == "urban" and rng.random() < 0.6:
        at = found_at + timedelta(days=rng.uniform(10, 40))
        made.emit(
            landlord,
            "housing.lease_termination.v1",
            at,
            {**premises, "municipality": site.municipality,
             "action": rng.choice(("lease_terminated", "eviction_requested", "warning_letter")),
             "decided_at": rfc3339(at, TimeStyle.UTC)},
            site.id,
        )  # fmt: skip
    if bypassed and rng.random() < 0.85:
        at = found_at + timedelta(days=rng.uniform(20, 60))
        kwh = round(rng.uniform(8_000, 60_000))
        made.emit(
            GRID,
            "energy.theft_claim.v1",
            at,
            {"ean": site.ean, "address": site.address, "municipality": site.municipality,
             "kwh_claimed": kwh, "amount_eur": round(kwh * 0.41 + 950, 2),
             "status": rng.choice(("issued", "issued", "paid", "disputed")),
             "claimed_at": rfc3339(at, TimeStyle.UTC)},
            site.id,
        )  # fmt: skip
    if rng.random() < 0.3:
        at = found_at + timedelta(days=rng.uniform(20, 60))
        made.emit(
            UWV,
            "social.benefits_decision.v1",
            at,
            {"address": site.address, "municipality": site.municipality,
             "scheme": rng.choice(("participatiewet", "ww", "wia")),
             "decision": rng.choice(("suspended", "recovered", "no_change")),
             "decided_at": rfc3339(at, TimeStyle.UTC)},
            site.id,
        )  # fmt: skip


def _nothing(made: _Made, municipality: str, where: dict[str, Any], at: datetime,
             about: str) -> None:  # fmt: skip
    source = MAYORS.get(municipality) if made.rng.random() < 0.25 else None
    made.emit(
        source or POLICE,
        "police.nothing_found.v1",
        at,
        {**where, "municipality": municipality,
         "check_kind": "municipal_inspection" if source else "police_visit",
         "checked_at": rfc3339(at, TimeStyle.UTC)},
        about,
    )  # fmt: skip


def _cleanup(made: _Made, dumping: dict[str, Any], address: str) -> None:
    rng = made.rng
    data = dumping["data"]
    at = _time(dumping) + timedelta(days=rng.uniform(1, 10))
    cleanup: dict[str, Any] = {"address": address, "municipality": data["municipality"],
                               "waste_kind": data["waste_kind"]}  # fmt: skip
    if "volume_litres" in data:
        cleanup["volume_litres"] = data["volume_litres"]
    cleanup["cost_eur"] = round(rng.uniform(800, 12_000), 2)
    cleanup["cleaned_at"] = rfc3339(at, TimeStyle.UTC)
    made.emit(ENVIRONMENT, "environment.dumping_cleanup.v1", at, cleanup, "background")
