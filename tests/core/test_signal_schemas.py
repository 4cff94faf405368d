"""The shipped signal schemas: they compile, carry the annotations, and accept realistic data."""

from __future__ import annotations

import copy
import json
from typing import Any

import fastjsonschema
import pytest

from services.core.errors import SignalRejected
from services.core.identifiers import IDENTIFIER_KINDS
from services.core.schema_registry import (
    BARRIER_STEPS,
    LOCATION_IDENTIFIER_KINDS,
    PARTNER_KINDS,
    SchemaRegistry,
    default_schema_dir,
)

SCHEMA_DIR = default_schema_dir()
REGISTRY = SchemaRegistry.load(SCHEMA_DIR)

EXPECTED_TYPES = {
    "energy.consumption_anomaly.v1",
    "energy.meter_tampering.v1",
    "energy.illegal_connection.v1",
    "energy.area_load_peak.v1",
    "water.abnormal_use.v1",
    "water.sewer_contamination_spike.v1",
    "housing.observation.v1",
    "rural.barn_rental_approach.v1",
    "chemicals.precursor_transaction.v1",
    "waste.drug_waste_dumping.v1",
    "residents.anonymous_tip.v1",
    "hub.stacked_location_alert.v1",
    # outcomes (x-outcome) and the prosecution's approval of one (x-approval)
    "police.location_finding.v1",
    "police.nothing_found.v1",
    "municipality.closure_order.v1",
    "housing.lease_termination.v1",
    "energy.theft_claim.v1",
    "social.benefits_decision.v1",
    "environment.dumping_cleanup.v1",
    "prosecution.case_approval.v1",
    # a RIEC's hand-over of a case to a partner's own process (x-handover; docs/riec.md)
    "riec.case_handover.v1",
}

EAN = "871685900000000011"

# One realistic, valid ``data`` per signal type, written the way partners send it (not
# canonical), so validation also exercises normalisation.
EXAMPLES: dict[str, dict[str, Any]] = {
    "energy.consumption_anomaly.v1": {
        "ean": "8716 8590 0000 0000 11",
        "address": "1811 ab 12-a",
        "municipality": "GM0361",
        "score": 0.93,
        "period": {"start": "2026-10-01", "end": "2026-10-31"},
        "kwh_expected": 310.0,
        "kwh_observed": 1490.5,
        "pattern": "cycle_12_12",
    },
    "energy.meter_tampering.v1": {
        "ean": EAN,
        "address": "1811AB 12A",
        "municipality": "GM0361",
        "tampering_kind": "meter_bypass",
        "detection": "field_inspection",
        "confidence": 1,
        "detected_at": "2026-10-14T09:30:00+02:00",
        "estimated_kwh_unmetered": 12000,
    },
    "energy.illegal_connection.v1": {
        "address": "1823 CD 4",
        "ean": EAN,
        "municipality": "GM0361",
        "connection_kind": "tap_before_meter",
        "discovered_at": "2026-10-15T13:05:00Z",
        "estimated_load_kw": 18.5,
        "confirmed_on_site": True,
    },
    "energy.area_load_peak.v1": {
        "postcode4": "1811",
        "municipality": "GM0361",
        "period": {"start": "2026-10-01", "end": "2026-10-07"},
        "peak_ratio": 1.8,
        "score": 0.71,
        "connection_count": 240,
    },
    "water.abnormal_use.v1": {
        "address": "1811AB 12A",
        "bag": "0361 01 0000 123456",
        "municipality": "GM0361",
        "score": 0.8,
        "period": {"start": "2026-09-01", "end": "2026-09-30"},
        "m3_expected": 9.5,
        "m3_observed": 41.0,
        "pattern": "night_use",
    },
    "water.sewer_contamination_spike.v1": {
        "sampling_point": "RWZI-ALK-03",
        "postcode4": "1812",
        "municipality": "GM0361",
        "substance": "bmk",
        "concentration": 2.4,
        "unit": "ug_per_l",
        "baseline_ratio": 35.0,
        "measured_at": "2026-10-20T06:00:00Z",
    },
    "housing.observation.v1": {
        "address": "1811 AB 12 A",
        "bag": "0361010000123456",
        "municipality": "GM0361",
        "observations": ["smell_cannabis", "taped_windows", "ventilation_noise"],
        "observer_role": "caretaker",
        "confidence": 0.6,
        "observed_at": "2026-10-21T11:15:00+02:00",
    },
    "rural.barn_rental_approach.v1": {
        "address": "1734 PA 7",
        "bag": "0361100000654321",
        "municipality": "GM0361",
        "approach_kind": "in_person",
        "requested_use": "storage",
        "offered_rent_eur_month": 2500,
        "cash_offered": True,
        "vehicle_plate": "12-ab-34",
        "approached_at": "2026-10-02T16:40:00+02:00",
    },
    "chemicals.precursor_transaction.v1": {
        "buyer_kvk": "1234 5678",
        "buyer_name": "  Jansen  Transport B.V. ",
        "delivery_address": "1811ab 12",
        "municipality": "GM0361",
        "substance": "formamide",
        "quantity": 200,
        "unit": "l",
        "transaction_at": "2026-10-09T10:00:00Z",
        "payment_method": "bank_transfer",
        "iban": "nl91 abna 0417 1643 00",
    },
    "waste.drug_waste_dumping.v1": {
        "postcode": "1735 ab",
        "municipality": "GM0361",
        "waste_kind": "barrels",
        "volume_litres": 600,
        "container_count": 3,
        "found_at": "2026-10-11T07:20:00+02:00",
        "vehicle_plate": "VX-123-B",
    },
    "residents.anonymous_tip.v1": {
        "category": "cannabis_cultivation",
        "address": "1811AB 12A",
        "municipality": "GM0361",
        "received_at": "2026-10-05T20:00:00Z",
        "channel": "web_form",
    },
    "hub.stacked_location_alert.v1": {
        "alert_id": "3f1c2a4e-8b9d-4c1e-9f0a-2b3c4d5e6f70",
        "address": "1811AB 12A",
        "bag": "0361010000123456",
        "municipality": "GM0361",
        "score": 0.88,
        "signal_types": ["energy.consumption_anomaly.v1", "housing.observation.v1"],
        "barrier_steps": ["cannabis.cultivate"],
        "partner_kinds": ["energy", "housing"],
        "evidence_count": 3,
        "first_seen": "2026-10-01T00:00:00Z",
        "last_seen": "2026-10-21T11:15:00+02:00",
    },
    "police.location_finding.v1": {
        "address": "1811 ab 12-a",
        "bag": "0361010000123456",
        "municipality": "GM0361",
        "finding": "cannabis_grow",
        "found_at": "2026-11-20T09:00:00+01:00",
        "dismantled": True,
        "plants": 420,
        "meter_bypassed": True,
    },
    "police.nothing_found.v1": {
        "address": "1811AB 12A",
        "municipality": "GM0361",
        "check_kind": "police_visit",
        "checked_at": "2026-11-20T09:00:00Z",
    },
    "municipality.closure_order.v1": {
        "address": "1811AB 12A",
        "municipality": "GM0361",
        "measure": "closure",
        "ground": "art_13b_1a",
        "closure_months": 6,
        "decided_at": "2026-12-01T10:00:00+01:00",
    },
    "housing.lease_termination.v1": {
        "bag": "0361010000123456",
        "municipality": "GM0361",
        "action": "lease_terminated",
        "decided_at": "2026-12-10T10:00:00Z",
    },
    "energy.theft_claim.v1": {
        "ean": EAN,
        "address": "1811AB 12A",
        "municipality": "GM0361",
        "kwh_claimed": 41000,
        "amount_eur": 18250.5,
        "status": "issued",
        "claimed_at": "2026-12-15T10:00:00Z",
    },
    "social.benefits_decision.v1": {
        "address": "1811AB 12A",
        "municipality": "GM0361",
        "scheme": "participatiewet",
        "decision": "suspended",
        "decided_at": "2026-12-20T10:00:00Z",
    },
    "environment.dumping_cleanup.v1": {
        "postcode": "1735 ab",
        "municipality": "GM0361",
        "waste_kind": "barrels",
        "volume_litres": 600,
        "cost_eur": 4200,
        "cleaned_at": "2026-10-12T10:00:00Z",
    },
    "prosecution.case_approval.v1": {
        "municipality": "GM0361",
        "outcome_source": "politie-nh",
        "outcome_signal_id": "politie-nh-2026-000123",
        "decision": "approved",
        "decided_at": "2026-11-22T10:00:00Z",
    },
    "riec.case_handover.v1": {
        "case": "case-2026-4f1a9c02",
        "measure": "closure_13b",
        "municipality": "GM0361",
        "address": "1811 AB 12-A",
        "handed_over_at": "2026-11-22T10:00:00Z",
    },
}


def raw_schemas() -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(SCHEMA_DIR.glob("*.json"))
    }


RAW = raw_schemas()


def test_the_expected_types_ship():
    assert set(RAW) == EXPECTED_TYPES
    assert set(REGISTRY.types()) == EXPECTED_TYPES
    assert set(EXAMPLES) == EXPECTED_TYPES


@pytest.mark.parametrize("signal_type", sorted(EXPECTED_TYPES))
def test_schema_compiles_with_fastjsonschema(signal_type):
    validate = fastjsonschema.compile(RAW[signal_type], use_default=False)
    validate(EXAMPLES[signal_type])


@pytest.mark.parametrize("signal_type", sorted(EXPECTED_TYPES))
def test_top_level_annotations(signal_type):
    schema = RAW[signal_type]
    assert schema["$id"] == f"urn:schakel:signal:{signal_type}"
    assert schema["x-signal-type"] == signal_type
    assert schema["title"].strip()
    assert schema["description"].strip()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) <= set(schema["properties"])
    assert schema["x-partner-kinds"]
    assert set(schema["x-partner-kinds"]) <= set(PARTNER_KINDS)
    assert set(schema["x-barrier-steps"]) <= set(BARRIER_STEPS)
    assert isinstance(schema["x-location-fields"], list)
    municipality = schema["properties"]["municipality"]
    assert municipality["pattern"] == "^GM[0-9]{4}$"
    assert "municipality" in schema["required"]
    # the partner prefix of the type is one of the kinds that may send it
    assert signal_type.split(".")[0] in schema["x-partner-kinds"]


def walk_properties(properties: dict[str, Any], prefix: str = ""):
    for name, prop in properties.items():
        yield f"{prefix}{name}", prop
        if prop.get("type") == "object":
            assert prop["additionalProperties"] is False, f"{prefix}{name}"
            yield from walk_properties(prop["properties"], f"{prefix}{name}.")


@pytest.mark.parametrize("signal_type", sorted(EXPECTED_TYPES))
def test_property_annotations(signal_type):
    schema = RAW[signal_type]
    for path, prop in walk_properties(schema["properties"]):
        assert prop.get("description"), f"{path} has no description"
        kind = prop.get("x-identifier")
        if kind is not None:
            assert kind in IDENTIFIER_KINDS, path
            assert prop["x-personal"] is True, path
            assert prop["type"] == "string", path
            assert "maxLength" in prop, f"{path} must bound its length"


@pytest.mark.parametrize("signal_type", sorted(EXPECTED_TYPES))
def test_location_and_strength_fields_name_real_properties(signal_type):
    schema = RAW[signal_type]
    properties = schema["properties"]
    for name in schema["x-location-fields"]:
        assert properties[name]["x-identifier"] in LOCATION_IDENTIFIER_KINDS
    strength = schema.get("x-strength-field")
    if strength is not None:
        prop = properties[strength]
        assert (prop["type"], prop["minimum"], prop["maximum"]) == ("number", 0, 1)


def test_location_fields_are_in_preference_order():
    order = ["address", "bag", "ean", "postcode"]
    for signal_type, schema in RAW.items():
        kinds = [schema["properties"][f]["x-identifier"] for f in schema["x-location-fields"]]
        assert kinds == sorted(kinds, key=order.index), signal_type


def test_types_without_location_carry_no_personal_data():
    for signal_type in ("energy.area_load_peak.v1", "water.sewer_contamination_spike.v1"):
        schema = REGISTRY.get(signal_type)
        assert schema.location_fields == ()
        assert not any(f.personal for f in schema.fields.values())


def test_anonymous_tip_has_no_reporter_or_free_text():
    fields = REGISTRY.get("residents.anonymous_tip.v1").fields
    assert set(fields) == {"category", "address", "municipality", "received_at", "channel"}


def test_expected_identifier_fields():
    identifiers = {
        t: {f.path: f.identifier for f in REGISTRY.get(t).identifier_fields} for t in EXPECTED_TYPES
    }
    assert identifiers["energy.consumption_anomaly.v1"] == {"ean": "ean", "address": "address"}
    assert identifiers["chemicals.precursor_transaction.v1"] == {
        "buyer_kvk": "kvk",
        "buyer_name": "name",
        "delivery_address": "address",
        "iban": "iban",
    }
    assert identifiers["rural.barn_rental_approach.v1"] == {
        "address": "address",
        "bag": "bag",
        "vehicle_plate": "plate",
    }
    assert identifiers["waste.drug_waste_dumping.v1"] == {
        "address": "address",
        "postcode": "postcode",
        "vehicle_plate": "plate",
    }
    assert identifiers["energy.area_load_peak.v1"] == {}


@pytest.mark.parametrize("signal_type", sorted(EXPECTED_TYPES))
def test_example_validates_through_the_registry(signal_type):
    example = EXAMPLES[signal_type]
    before = copy.deepcopy(example)
    data, canonical = REGISTRY.get(signal_type).validate(example, signal_id="example-1")
    assert example == before
    assert set(canonical) == {
        f.path for f in REGISTRY.get(signal_type).identifier_fields if f.path in example
    }
    for path, value in canonical.items():
        assert data[path] == value


def test_example_canonical_values():
    _, canonical = REGISTRY.get("chemicals.precursor_transaction.v1").validate(
        EXAMPLES["chemicals.precursor_transaction.v1"], signal_id="example-2"
    )
    assert canonical == {
        "buyer_kvk": "12345678",
        "buyer_name": "jansen transport b.v.",
        "delivery_address": "1811AB 12",
        "iban": "NL91ABNA0417164300",
    }


def mutated(signal_type: str, **changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLES[signal_type])
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


INVALID = [
    ("energy.consumption_anomaly.v1", mutated("energy.consumption_anomaly.v1", ean=None)),
    ("energy.consumption_anomaly.v1", mutated("energy.consumption_anomaly.v1", score=1.2)),
    ("energy.consumption_anomaly.v1", mutated("energy.consumption_anomaly.v1", kwh_raw=[1, 2])),
    (
        "energy.consumption_anomaly.v1",
        mutated("energy.consumption_anomaly.v1", period={"start": "2026-02-30", "end": "x"}),
    ),
    ("energy.meter_tampering.v1", mutated("energy.meter_tampering.v1", tampering_kind="unknown")),
    ("energy.area_load_peak.v1", mutated("energy.area_load_peak.v1", connection_count=3)),
    ("energy.area_load_peak.v1", mutated("energy.area_load_peak.v1", postcode4="0811")),
    ("water.abnormal_use.v1", mutated("water.abnormal_use.v1", municipality="0361")),
    ("housing.observation.v1", mutated("housing.observation.v1", observations=[])),
    ("housing.observation.v1", mutated("housing.observation.v1", observations=["smell", "x"])),
    ("housing.observation.v1", mutated("housing.observation.v1", observed_at="yesterday")),
    (
        "chemicals.precursor_transaction.v1",
        mutated("chemicals.precursor_transaction.v1", quantity=0),
    ),
    ("waste.drug_waste_dumping.v1", mutated("waste.drug_waste_dumping.v1", postcode=None)),
    (
        "residents.anonymous_tip.v1",
        mutated("residents.anonymous_tip.v1", reporter_name="A. Jansen"),
    ),
    ("hub.stacked_location_alert.v1", mutated("hub.stacked_location_alert.v1", evidence_count=1)),
    (
        "hub.stacked_location_alert.v1",
        mutated("hub.stacked_location_alert.v1", address=None, bag=None),
    ),
    (
        "hub.stacked_location_alert.v1",
        mutated("hub.stacked_location_alert.v1", barrier_steps=["cannabis.grow"]),
    ),
]


@pytest.mark.parametrize(("signal_type", "data"), INVALID)
def test_invalid_examples_fail(signal_type, data):
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        fastjsonschema.compile(RAW[signal_type], use_default=False)(data)
    with pytest.raises(SignalRejected) as caught:
        REGISTRY.get(signal_type).validate(data, signal_id="bad-1")
    assert caught.value.code == "schema_violation"


@pytest.mark.parametrize(
    ("signal_type", "field", "value"),
    [
        ("energy.consumption_anomaly.v1", "ean", "871685900000000012"),
        ("water.abnormal_use.v1", "bag", "0361990000123456"),
        ("rural.barn_rental_approach.v1", "vehicle_plate", "ABCDEF"),
        ("chemicals.precursor_transaction.v1", "iban", "NL92ABNA0417164300"),
        ("waste.drug_waste_dumping.v1", "postcode", "1811 SS"),
    ],
)
def test_schema_valid_but_bad_identifiers_fail(signal_type, field, value):
    data = mutated(signal_type, **{field: value})
    fastjsonschema.compile(RAW[signal_type], use_default=False)(data)  # the schema accepts it
    with pytest.raises(SignalRejected) as caught:
        REGISTRY.get(signal_type).validate(data, signal_id="bad-2")
    assert caught.value.code == "invalid_identifier"
    assert caught.value.message.startswith(f"{field}: invalid ")
    assert value not in str(caught.value)
