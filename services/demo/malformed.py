"""Broken input lines, each the kind of mistake real partner systems make.

The hub must reject every one of them with a reason and route it to the dead-letter topic
while the good signals around it flow on. Each kind starts from a complete, valid envelope
and breaks exactly one thing, so a rejection can only have that one cause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from random import Random
from typing import Any

import orjson

__all__ = ["MALFORMED_KINDS", "NEEDS", "MalformedLine", "corrupt"]

MALFORMED_KINDS: dict[str, str] = {
    "invalid_json": "not JSON: trailing comma, single quotes or an unquoted key",
    "truncated": "the line was cut off part-way (a partial write)",
    "bad_ean_check_digit": "an EAN-18 whose GS1 check digit does not match",
    "unknown_signal_type": "a type without a schema (a newer version, raw meter readings)",
    "missing_required_field": "a required data field left out",
    "wrong_type": "a data field of the wrong JSON type (number as text, list as text)",
    "invalid_postcode": "an address with a postcode that cannot exist",
    "time_without_offset": "an envelope time without a UTC offset",
    "unknown_envelope_attribute": "an envelope attribute CloudEvents extensions would add",
}
"""Every kind of broken line the generator makes, with what is wrong with it."""

NEEDS: dict[str, tuple[str, ...]] = {
    "bad_ean_check_digit": ("energy.consumption_anomaly.v1", "energy.meter_tampering.v1"),
    "invalid_postcode": (
        "housing.observation.v1",
        "water.abnormal_use.v1",
        "rural.barn_rental_approach.v1",
        "energy.illegal_connection.v1",
    ),
}
"""Signal types a kind can break (the others can break any type)."""

_DROPPABLE: dict[str, tuple[str, ...]] = {
    "energy.consumption_anomaly.v1": ("ean", "score", "period", "kwh_observed"),
    "energy.meter_tampering.v1": ("ean", "tampering_kind", "detected_at"),
    "energy.illegal_connection.v1": ("address", "confirmed_on_site"),
    "energy.area_load_peak.v1": ("postcode4", "connection_count"),
    "water.abnormal_use.v1": ("address", "score", "m3_observed"),
    "water.sewer_contamination_spike.v1": ("substance", "measured_at"),
    "housing.observation.v1": ("observations", "observed_at"),
    "waste.drug_waste_dumping.v1": ("waste_kind", "found_at"),
    "rural.barn_rental_approach.v1": ("address", "approached_at"),
    "residents.anonymous_tip.v1": ("category", "channel"),
    "chemicals.precursor_transaction.v1": ("buyer_name", "substance", "payment_method"),
}
_INVENTED_TYPES = {
    "energy": "energy.smart_meter_readings.v1",  # raw readings: energy companies may not send them
    "water": "water.pressure_drop.v1",
    "housing": "housing.nuisance_report.v1",
    "waste": "waste.container_weight.v1",
    "rural": "rural.tenant_activity.v1",
    "residents": "residents.free_text_tip.v1",
    "chemicals": "chemicals.customer_screening.v1",
}
"""Types a partner's system might start sending before any schema exists, by type prefix."""
_EXTENSIONS = ("partitionkey", "correlationid", "comliandermeterid", "priority", "sequence")


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """One broken line and where it goes: after the first ``after`` good signals."""

    kind: str
    line: bytes
    after: int


def _dump(envelope: dict[str, Any]) -> bytes:
    return orjson.dumps(envelope)


def _wrong_type(rng: Random, data: dict[str, Any]) -> None:
    candidates = [
        key
        for key in ("score", "confidence", "quantity", "observations", "confirmed_on_site",
                    "connection_count", "period", "municipality", "cash_offered")
        if key in data
    ]  # fmt: skip
    key = rng.choice(candidates)
    value = data[key]
    if key == "observations":
        data[key] = ",".join(value)  # a list flattened to text
    elif key == "quantity":
        data[key] = f"{value} kg"
    elif key == "period":
        data[key] = f"{value['start']}/{value['end']}"
    elif key == "municipality":
        data[key] = int(value[2:])  # 361 instead of GM0361
    elif isinstance(value, bool):
        data[key] = "ja" if value else "nee"
    else:
        data[key] = str(value)


def _bad_postcode(rng: Random, address: str) -> str:
    """``address`` (any spelling) with its postcode made impossible."""
    compact = "".join(address.split()).upper()
    pc4, rest = compact[:4], compact[6:]
    roll = rng.randrange(3)
    if roll == 0:
        return f"{pc4} {rng.choice(('SA', 'SD', 'SS'))} {rest}"  # letters never issued
    if roll == 1:
        return f"0{pc4[1:]} {compact[4:6]} {rest}"  # postcodes do not start with 0
    return f"{pc4} {compact[4]} {rest}"  # one letter short


def _broken_json(rng: Random, envelope: dict[str, Any]) -> bytes:
    raw = _dump(envelope)
    style = rng.randrange(3)
    if style == 0:
        return raw[:-1] + b",}"  # trailing comma
    if style == 1:
        return raw.replace(b'"', b"'")  # single quotes, as a Python dict prints
    return raw.replace(b'"specversion":', b"specversion:", 1)  # unquoted key


def _truncated(rng: Random, envelope: dict[str, Any]) -> bytes:
    raw = _dump(envelope)
    cut = rng.randrange(len(raw) // 5, len(raw) * 9 // 10)
    while raw[cut] >= 0x80:  # never split a UTF-8 character: the file stays UTF-8
        cut -= 1
    return raw[:cut]


def _bad_ean(rng: Random, envelope: dict[str, Any]) -> None:
    data = envelope["data"]
    digits = "".join(c for c in data["ean"] if c.isdigit())
    data["ean"] = digits[:-1] + str((int(digits[-1]) + rng.randrange(1, 10)) % 10)


def _unknown_type(rng: Random, envelope: dict[str, Any]) -> None:
    """A newer version of the partner's own type, or a type of its own invention."""
    family, name, _ = envelope["type"].split(".")
    if rng.random() < 0.5:
        envelope["type"] = f"{family}.{name}.v{rng.randrange(2, 4)}"
    else:
        envelope["type"] = _INVENTED_TYPES[family]
    envelope["dataschema"] = "urn:schakel:signal:" + envelope["type"]


def _missing_field(rng: Random, envelope: dict[str, Any]) -> None:
    envelope["data"].pop(rng.choice((*_DROPPABLE[envelope["type"]], "municipality")), None)


def _invalid_postcode(rng: Random, envelope: dict[str, Any]) -> None:
    envelope["data"]["address"] = _bad_postcode(rng, envelope["data"]["address"])


def _time_without_offset(rng: Random, envelope: dict[str, Any]) -> None:
    text: str = envelope["time"]
    envelope["time"] = text[:19] + (text[19:23] if text[19:20] == "." else "")


def _extension(rng: Random, envelope: dict[str, Any]) -> None:
    envelope[rng.choice(_EXTENSIONS)] = f"{rng.randrange(10**6)}"


_TEXT_FAULTS: dict[str, Callable[[Random, dict[str, Any]], bytes]] = {
    "invalid_json": _broken_json,
    "truncated": _truncated,
}
_FIELD_FAULTS: dict[str, Callable[[Random, dict[str, Any]], None]] = {
    "bad_ean_check_digit": _bad_ean,
    "unknown_signal_type": _unknown_type,
    "missing_required_field": _missing_field,
    "wrong_type": lambda rng, envelope: _wrong_type(rng, envelope["data"]),
    "invalid_postcode": _invalid_postcode,
    "time_without_offset": _time_without_offset,
    "unknown_envelope_attribute": _extension,
}


def corrupt(rng: Random, kind: str, envelope: dict[str, Any]) -> bytes:
    """Break ``envelope`` (a valid one, changed in place) in the way ``kind`` describes."""
    text_fault = _TEXT_FAULTS.get(kind)
    if text_fault is not None:
        return text_fault(rng, envelope)
    field_fault = _FIELD_FAULTS.get(kind)
    if field_fault is None:
        raise ValueError(f"unknown malformed kind {kind!r}")
    field_fault(rng, envelope)
    return _dump(envelope)
