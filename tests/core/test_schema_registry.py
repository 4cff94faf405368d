"""Schema registry: loading rules, canonicalisation, rejection codes, no values in messages."""

from __future__ import annotations

import copy
import dataclasses
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.errors import SignalRejected
from services.core.schema_registry import (
    FieldInfo,
    SchemaDefinitionError,
    SchemaRegistry,
    default_schema_dir,
)

REGISTRY = SchemaRegistry.load(default_schema_dir())
ANOMALY = REGISTRY.get("energy.consumption_anomaly.v1")
EAN = "871685900000000011"


def anomaly(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ean": "8716 8590 0000 0000 11",
        "address": "1811 ab 12-a",
        "municipality": "GM0361",
        "score": 0.93,
        "period": {"start": "2026-10-01", "end": "2026-10-31"},
        "kwh_expected": 310.0,
        "kwh_observed": 1490.5,
    }
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def rejection(schema_type: str, data: object) -> SignalRejected:
    with pytest.raises(SignalRejected) as caught:
        REGISTRY.get(schema_type).validate(data, signal_id="sig-42")
    error = caught.value
    assert error.signal_id == "sig-42"
    # raised outside the except block: no chained exception that could hold the value
    assert error.__cause__ is None
    assert error.__context__ is None
    return error


# --- the registry ----------------------------------------------------------------------------


def test_default_schema_dir_is_the_repo_folder():
    directory = default_schema_dir()
    assert directory.is_dir()
    assert directory.parts[-2:] == ("schemas", "signals")


def test_registry_lookup():
    types = REGISTRY.types()
    assert types == tuple(sorted(types))
    assert "energy.consumption_anomaly.v1" in REGISTRY
    assert "energy.consumption_anomaly.v2" not in REGISTRY
    assert 42 not in REGISTRY
    assert len(REGISTRY) == len(types)
    assert REGISTRY.get("energy.consumption_anomaly.v1") is ANOMALY


def test_unknown_type_is_rejected():
    with pytest.raises(SignalRejected) as caught:
        REGISTRY.get("energy.consumption_anomaly.v9", signal_id="sig-1")
    assert caught.value.code == "unknown_type"
    assert caught.value.signal_id == "sig-1"
    assert "energy.consumption_anomaly.v9" in caught.value.message


@pytest.mark.parametrize("signal_type", [EAN, "1811AB 12A", "Jan Jansen", "", "x" * 500])
def test_unknown_type_message_does_not_echo_odd_type_names(signal_type):
    with pytest.raises(SignalRejected) as caught:
        REGISTRY.get(signal_type)
    assert caught.value.code == "unknown_type"
    if signal_type:
        assert signal_type not in str(caught.value)


def test_schema_metadata():
    assert ANOMALY.type == "energy.consumption_anomaly.v1"
    assert ANOMALY.uri == "urn:schakel:signal:energy.consumption_anomaly.v1"
    assert ANOMALY.title == "Electricity consumption anomaly"
    assert ANOMALY.partner_kinds == ("energy",)
    assert "cannabis.cultivate" in ANOMALY.barrier_steps
    assert ANOMALY.location_fields == ("address", "ean")
    assert ANOMALY.strength_field == "score"
    assert ANOMALY.fields["ean"] == FieldInfo("ean", "string", None, "ean", True)
    assert ANOMALY.fields["period"] == FieldInfo("period", "object", None, None, False)
    assert ANOMALY.fields["period.start"] == FieldInfo(
        "period.start", "string", "date", None, False
    )
    assert ANOMALY.fields["score"].json_type == "number"
    assert [f.path for f in ANOMALY.identifier_fields] == ["ean", "address"]


def test_schema_objects_are_read_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ANOMALY.fields["ean"].personal = False  # type: ignore[misc]
    with pytest.raises(TypeError):
        ANOMALY.fields["ean"] = ANOMALY.fields["score"]  # type: ignore[index]


# --- validation: canonical output, no mutation --------------------------------------------


def test_validate_canonicalises_identifiers():
    data, canonical = ANOMALY.validate(anomaly(), signal_id="sig-1")
    assert canonical == {"ean": EAN, "address": "1811AB 12A"}
    assert data["ean"] == EAN
    assert data["address"] == "1811AB 12A"
    assert data["score"] == 0.93
    assert data["period"] == {"start": "2026-10-01", "end": "2026-10-31"}


def test_validate_does_not_mutate_its_input():
    original = anomaly()
    snapshot = copy.deepcopy(original)
    data, _ = ANOMALY.validate(original, signal_id="sig-1")
    assert original == snapshot
    assert data is not original


def test_optional_identifiers_may_be_absent():
    data, canonical = ANOMALY.validate(anomaly(address=None), signal_id="sig-1")
    assert canonical == {"ean": EAN}
    assert "address" not in data


def test_canonical_input_passes_unchanged():
    canonical_data = anomaly(ean=EAN, address="1811AB 12A")
    data, _ = ANOMALY.validate(canonical_data, signal_id="sig-1")
    assert data == canonical_data


# --- validation: rejections ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("signal_type", "data", "message"),
    [
        ("energy.consumption_anomaly.v1", anomaly(ean=None), "ean is required"),
        ("energy.consumption_anomaly.v1", anomaly(ean=None, score=None), "ean, score are required"),
        (
            "energy.consumption_anomaly.v1",
            anomaly(period={"start": "2026-10-01"}),
            "period.end is required",
        ),
        ("energy.consumption_anomaly.v1", anomaly(score="high"), "score must be of type number"),
        ("energy.consumption_anomaly.v1", anomaly(score=1.5), "score must be at most 1"),
        (
            "energy.consumption_anomaly.v1",
            anomaly(kwh_observed=-1),
            "kwh_observed must be at least 0",
        ),
        (
            "energy.consumption_anomaly.v1",
            anomaly(municipality="Alkmaar"),
            "municipality must match the pattern ^GM[0-9]{4}$",
        ),
        (
            "energy.consumption_anomaly.v1",
            anomaly(period={"start": "2026-02-30", "end": "2026-03-01"}),
            "period.start must be a date (YYYY-MM-DD)",
        ),
        (
            "energy.consumption_anomaly.v1",
            anomaly(ean="1" * 41),
            "ean must be at most 40 characters long",
        ),
        (
            "energy.consumption_anomaly.v1",
            anomaly(ean=871685900000000011),
            "ean must be of type string",
        ),
        (
            "energy.consumption_anomaly.v1",
            anomaly(pattern="strobe"),
            "pattern must be one of: cycle_12_12, cycle_18_6, continuous_high, sudden_increase, "
            "other",
        ),
        ("energy.consumption_anomaly.v1", [EAN], "data must be of type object"),
        ("energy.consumption_anomaly.v1", None, "data must be of type object"),
        (
            "waste.drug_waste_dumping.v1",
            {"municipality": "GM0361", "waste_kind": "barrels", "found_at": "2026-10-11T07:20:00Z"},
            "data must have at least one of: address, postcode",
        ),
        (
            "housing.observation.v1",
            {
                "address": "1811AB 12A",
                "municipality": "GM0361",
                "observations": ["heat", "heat"],
                "observer_role": "caretaker",
                "observed_at": "2026-10-21T11:15:00Z",
            },
            "observations must not contain duplicate items",
        ),
        (
            "hub.stacked_location_alert.v1",
            {
                "alert_id": "3f1c2a4e-8b9d-4c1e-9f0a-2b3c4d5e6f70",
                "bag": "0361010000123456",
                "municipality": "GM0361",
                "score": 0.9,
                "signal_types": ["housing.observation.v1"],
                "barrier_steps": [],
                "partner_kinds": ["energy", "housing", "energy"],
                "evidence_count": 3,
                "first_seen": "2026-10-01T00:00:00Z",
                "last_seen": "2026-10-02T00:00:00Z",
            },
            "partner_kinds must not contain duplicate items",
        ),
        (
            "housing.observation.v1",
            {
                "address": "1811AB 12A",
                "municipality": "GM0361",
                "observations": ["heat", "grow_lamps"],
                "observer_role": "caretaker",
                "observed_at": "2026-10-21T11:15:00Z",
            },
            "observations[1] must be one of:",
        ),
        (
            "housing.observation.v1",
            {
                "address": "1811AB 12A",
                "municipality": "GM0361",
                "observations": ["heat"],
                "observer_role": "caretaker",
                "observed_at": "2026-10-21 11:15",
            },
            "observed_at must be an RFC 3339 date-time with time zone",
        ),
        (
            "chemicals.precursor_transaction.v1",
            {
                "buyer_name": "Jansen",
                "delivery_address": "1811AB 12",
                "municipality": "GM0361",
                "substance": "formamide",
                "quantity": 0,
                "unit": "l",
                "transaction_at": "2026-10-09T10:00:00Z",
                "payment_method": "cash",
            },
            "quantity must be greater than 0",
        ),
    ],
)
def test_schema_violations(signal_type, data, message):
    error = rejection(signal_type, data)
    assert error.code == "schema_violation"
    assert error.message.startswith(message), error.message


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("field", ["score", "kwh_observed"])
def test_non_finite_numbers_are_rejected(field, number):
    error = rejection("energy.consumption_anomaly.v1", anomaly(**{field: number}))
    assert error.code == "schema_violation"
    assert error.message in (
        f"{field} must be a finite number",
        f"{field} must be at most 1",
        f"{field} must be at least 0",
    )


def test_unexpected_properties_are_not_named_in_the_message():
    # a partner might put personal data in an unknown key as well as its value
    error = rejection(
        "energy.consumption_anomaly.v1", anomaly(**{"jan_jansen_1811ab": "Jan Jansen, 1811AB 12A"})
    )
    assert error.code == "schema_violation"
    assert error.message.startswith("data has properties the schema does not define (allowed: ")
    assert "jan_jansen" not in str(error)
    assert "Jan Jansen" not in str(error)
    assert "1811AB" not in str(error)


def test_nested_unexpected_property():
    error = rejection(
        "energy.consumption_anomaly.v1",
        anomaly(period={"start": "2026-10-01", "end": "2026-10-31", "meter_reading": 12345}),
    )
    assert error.message == "period has properties the schema does not define (allowed: start, end)"


@pytest.mark.parametrize(
    ("signal_type", "field", "value", "message"),
    [
        (
            "energy.consumption_anomaly.v1",
            "ean",
            "871685900000000012",
            "ean: invalid ean: check digit does not match",
        ),
        (
            "energy.consumption_anomaly.v1",
            "ean",
            "87168590000000001",
            "ean: invalid ean: must be 18 digits",
        ),
        (
            "energy.consumption_anomaly.v1",
            "address",
            "1811SS 12",
            "address: invalid address: postcode letters",
        ),
        (
            "energy.consumption_anomaly.v1",
            "address",
            "Dorpsstraat 12",
            "address: invalid address: must be a postcode",
        ),
    ],
)
def test_invalid_identifiers(signal_type, field, value, message):
    error = rejection(signal_type, anomaly(**{field: value}))
    assert error.code == "invalid_identifier"
    assert error.message.startswith(message), error.message
    assert value not in str(error)
    assert value not in repr(error)


def test_invalid_name_is_not_echoed():
    name = "Jansen " * 40  # 280 characters: within the schema bound, too long as a name
    data = {
        "buyer_name": name,
        "delivery_address": "1811AB 12",
        "municipality": "GM0361",
        "substance": "formamide",
        "quantity": 10,
        "unit": "l",
        "transaction_at": "2026-10-09T10:00:00Z",
        "payment_method": "cash",
    }
    error = rejection("chemicals.precursor_transaction.v1", data)
    assert error.code == "invalid_identifier"
    assert error.message.startswith("buyer_name: invalid name: must be at most 200 characters")
    assert "Jansen" not in str(error)
    assert "jansen" not in str(error)


MARKER = "Zq"  # appears in no schema text, so any occurrence in a message is an echoed value


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["ean", "address", "municipality", "pattern", "score", "period"]),
    st.one_of(
        st.text(alphabet=string.ascii_letters + string.digits + " -.", min_size=4, max_size=40),
        st.text(min_size=4, max_size=40),
    ),
)
def test_no_rejection_message_echoes_the_value(field, text):
    value = MARKER + text
    original = anomaly(**{field: value})
    snapshot = copy.deepcopy(original)
    error: SignalRejected | None = None
    try:
        ANOMALY.validate(original, signal_id="sig-h")
    except SignalRejected as caught:
        error = caught
    assert original == snapshot
    if error is not None:
        assert MARKER not in f"{error} {error!r} {error.message}"
        assert error.__context__ is None


# --- loading: custom schemas -----------------------------------------------------------------


def base_schema(signal_type: str = "test.nested_thing.v1") -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": f"urn:schakel:signal:{signal_type}",
        "title": "Nested test thing",
        "description": "A schema used by the tests only.",
        "type": "object",
        "x-signal-type": signal_type,
        "x-partner-kinds": ["municipality"],
        "x-barrier-steps": ["cannabis.acquire_location"],
        "x-location-fields": ["location.address"],
        "x-strength-field": "score",
        "additionalProperties": False,
        "required": ["municipality", "location"],
        "properties": {
            "municipality": {"type": "string", "pattern": "^GM[0-9]{4}$"},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "level": {"type": "integer", "default": 3},
            "location": {
                "type": "object",
                "additionalProperties": False,
                "required": ["address"],
                "properties": {
                    "address": {"type": "string", "x-identifier": "address", "x-personal": True},
                    "plate": {"type": "string", "x-identifier": "plate", "x-personal": True},
                    "note": {"type": "string", "enum": ["front", "back"]},
                },
            },
            "tags": {
                "type": "array",
                "uniqueItems": True,
                "items": {"type": "string", "enum": ["a", "b", "c"]},
            },
            "pairs": {
                "type": "array",
                "uniqueItems": True,
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"k": {"type": "string"}},
                },
            },
            "owner": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "kvk": {"type": "string", "x-identifier": "kvk", "x-personal": True},
                },
            },
        },
    }


def write(directory: Path, schema: dict[str, Any], name: str | None = None) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / (name or f"{schema['x-signal-type']}.json")
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def test_nested_identifiers_are_canonicalised_without_touching_the_input(tmp_path):
    write(tmp_path, base_schema())
    schema = SchemaRegistry.load(tmp_path).get("test.nested_thing.v1")
    assert schema.location_fields == ("location.address",)
    assert [f.path for f in schema.identifier_fields] == [
        "location.address",
        "location.plate",
        "owner.kvk",
    ]
    original = {
        "municipality": "GM0361",
        "location": {"address": "1811 ab 12-a", "plate": "12-ab-34", "note": "back"},
        "owner": {"kvk": "1234.5678"},
    }
    snapshot = copy.deepcopy(original)
    data, canonical = schema.validate(original, signal_id="sig-n")
    assert original == snapshot
    assert data["location"] is not original["location"]
    assert data["location"] == {"address": "1811AB 12A", "plate": "12AB34", "note": "back"}
    assert data["owner"] == {"kvk": "12345678"}
    assert canonical == {
        "location.address": "1811AB 12A",
        "location.plate": "12AB34",
        "owner.kvk": "12345678",
    }
    assert "level" not in data  # schema defaults are never injected


def test_absent_optional_parent_object(tmp_path):
    write(tmp_path, base_schema())
    schema = SchemaRegistry.load(tmp_path).get("test.nested_thing.v1")
    data, canonical = schema.validate(
        {"municipality": "GM0361", "location": {"address": "1811AB 12A"}}, signal_id="sig-n"
    )
    assert canonical == {"location.address": "1811AB 12A"}
    assert "owner" not in data


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tags": ["a", "b", "a"]}, "tags must not contain duplicate items"),
        ({"pairs": [{"k": "x"}, {"k": "x"}]}, "pairs must not contain duplicate items"),
        ({"tags": [["a"], ["a"]]}, "tags[0] must be of type string"),
    ],
)
def test_unique_items(tmp_path, extra, message):
    write(tmp_path, base_schema())
    schema = SchemaRegistry.load(tmp_path).get("test.nested_thing.v1")
    base = {"municipality": "GM0361", "location": {"address": "1811AB 12A"}}
    schema.validate({**base, "tags": ["a", "b"], "pairs": [{"k": "x"}, {}]}, signal_id="sig-u")
    with pytest.raises(SignalRejected) as caught:
        schema.validate({**base, **extra}, signal_id="sig-u")
    assert caught.value.code == "schema_violation"
    assert caught.value.message == message


def test_top_level_any_of_required_sets(tmp_path):
    schema_doc = base_schema()
    schema_doc["anyOf"] = [{"required": ["score"]}, {"required": ["tags", "pairs"]}]
    write(tmp_path, schema_doc)
    schema = SchemaRegistry.load(tmp_path).get("test.nested_thing.v1")
    base = {"municipality": "GM0361", "location": {"address": "1811AB 12A"}}
    schema.validate({**base, "score": 0.5}, signal_id="sig-a")
    schema.validate({**base, "tags": [], "pairs": []}, signal_id="sig-a")
    with pytest.raises(SignalRejected) as caught:
        schema.validate({**base, "tags": []}, signal_id="sig-a")
    assert caught.value.message == "data must have at least one of: score, tags+pairs"


def test_nested_invalid_identifier_names_the_dotted_path(tmp_path):
    write(tmp_path, base_schema())
    schema = SchemaRegistry.load(tmp_path).get("test.nested_thing.v1")
    with pytest.raises(SignalRejected) as caught:
        schema.validate(
            {"municipality": "GM0361", "location": {"address": "1811AB 12A", "plate": "AB-CD-EF"}},
            signal_id="sig-n",
        )
    assert caught.value.code == "invalid_identifier"
    assert caught.value.message == (
        "location.plate: invalid plate: must contain at least one letter and one digit"
    )


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(schema: dict[str, Any]) -> None:
        *parents, leaf = path.split("/")
        node = schema
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value

    return apply


_DELETE = object()


@pytest.mark.parametrize(
    ("mutation", "fragment"),
    [
        (
            _set("$id", "urn:schakel:signal:other.v1"),
            "$id must be urn:schakel:signal:test.nested_thing.v1",
        ),
        (_set("x-signal-type", "test.other.v1"), "x-signal-type must be test.nested_thing.v1"),
        (_set("title", ""), "title must be a non-empty string"),
        (_set("description", _DELETE), "description missing"),
        (_set("type", "array"), 'type must be "object"'),
        (_set("additionalProperties", True), "top level: additionalProperties must be false"),
        (
            _set("properties/location/additionalProperties", _DELETE),
            "location: additionalProperties must be false",
        ),
        (
            _set("patternProperties", {"^x_": {"type": "string"}}),
            "patternProperties is not supported",
        ),
        (_set("required", ["municipality", "nope"]), "required must list defined properties"),
        (
            _set("properties/location/properties/plate/x-identifier", "bsn"),
            "location.plate: x-identifier must be one of",
        ),
        (
            _set("properties/location/properties/plate/x-personal", _DELETE),
            "must be marked x-personal: true",
        ),
        (
            _set("properties/location/properties/plate/x-personal", "yes"),
            "x-personal must be true or false",
        ),
        (
            _set("properties/level/x-identifier", "kvk"),
            "level: an x-identifier field must be a string",
        ),
        (_set("properties/level/type", ["integer", "null"]), "level: type must be one of"),
        (_set("properties/location/properties/plate/x-identifier", ["plate"]), "x-identifier must"),
        (_set("required", [["municipality"]]), "malformed schema"),
        (_set("properties/Level", {"type": "integer"}), "Level: property names must be snake_case"),
        (
            _set("x-location-fields", ["score"]),
            "must be an address, bag, ean or postcode identifier",
        ),
        (_set("x-location-fields", ["nowhere"]), "x-location-fields has unknown entries"),
        (
            _set("x-location-fields", "location.address"),
            "x-location-fields must be a list of strings",
        ),
        (_set("x-strength-field", "level"), "x-strength-field must name a number property"),
        (_set("x-strength-field", "missing"), "x-strength-field must name a number property"),
        (_set("x-partner-kinds", ["bank"]), "x-partner-kinds has unknown entries"),
        (_set("x-partner-kinds", []), "x-partner-kinds must name at least one partner kind"),
        (_set("x-partner-kinds", ["energy", "energy"]), "x-partner-kinds lists an entry twice"),
        (_set("x-barrier-steps", ["cannabis.grow"]), "x-barrier-steps has unknown entries"),
        (_set("anyOf", [{"required": ["score"]}, {"required": ["nope"]}]), "anyOf: required must"),
        (
            _set("properties/municipality", {"type": "string"}),
            "a municipality property with pattern",
        ),
        (
            _set("properties/owner/properties/kvk/$ref", "https://example.org/kvk.json"),
            "$ref is not supported",
        ),
        (
            _set("properties/location/properties/note/pattern", "^(unclosed"),
            "schema does not compile",
        ),
    ],
)
def test_broken_schemas_are_refused_naming_the_file(tmp_path, mutation, fragment):
    schema = base_schema()
    mutation(schema)
    path = write(tmp_path, schema, "test.nested_thing.v1.json")
    with pytest.raises(SchemaDefinitionError) as caught:
        SchemaRegistry.load(tmp_path)
    assert caught.value.file == path
    assert str(path) in str(caught.value)
    assert fragment in caught.value.problem, caught.value.problem


def test_file_name_must_be_a_versioned_type(tmp_path):
    path = write(tmp_path, base_schema(), "nested_thing.json")
    with pytest.raises(SchemaDefinitionError, match=r"file name must be <type>\.json") as caught:
        SchemaRegistry.load(tmp_path)
    assert caught.value.file == path


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "test.broken.v1.json"
    path.write_text('{"title": ', encoding="utf-8")
    with pytest.raises(SchemaDefinitionError, match="cannot read schema") as caught:
        SchemaRegistry.load(tmp_path)
    assert caught.value.file == path


def test_duplicate_keys_are_refused(tmp_path):
    path = tmp_path / "test.nested_thing.v1.json"
    text = json.dumps(base_schema())
    path.write_text(text[:-1] + ', "title": "again"}', encoding="utf-8")
    with pytest.raises(SchemaDefinitionError, match="duplicate key 'title'"):
        SchemaRegistry.load(tmp_path)


def test_missing_or_empty_directory(tmp_path):
    with pytest.raises(SchemaDefinitionError, match="does not exist"):
        SchemaRegistry.load(tmp_path / "nope")
    with pytest.raises(SchemaDefinitionError, match=r"no \*\.json"):
        SchemaRegistry.load(tmp_path)


def test_only_json_files_are_loaded(tmp_path):
    write(tmp_path, base_schema())
    (tmp_path / "README.md").write_text("notes", encoding="utf-8")
    assert SchemaRegistry.load(tmp_path).types() == ("test.nested_thing.v1",)
