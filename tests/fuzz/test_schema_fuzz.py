"""Schema validation: any ``data`` gives canonical data or a schema rejection naming the field.

The input is never changed, every identifier in accepted data is canonical, and a rejection
never repeats a value from the input.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.core.errors import SignalRejected
from services.core.identifiers import normalise
from tests.core.builders import REGISTRY
from tests.fuzz.strategies import attempt, demo_signals, fuzz_settings, json_values

CANARY = "CANARY-5521-QQXZ"
TYPES = sorted(REGISTRY.types())
DEMO_DATA = {orjson.loads(raw)["type"]: orjson.loads(raw)["data"] for raw in demo_signals()}


@st.composite
def data_for_a_type(draw: st.DrawFn) -> tuple[str, Any]:
    signal_type = draw(st.sampled_from(TYPES))
    base = copy.deepcopy(DEMO_DATA.get(signal_type, {}))
    if not draw(st.integers(0, 5)):
        return signal_type, draw(json_values)  # not even an object, sometimes
    fields = sorted(REGISTRY.get(signal_type).fields)
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(fields)).split(".")
        node = base
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        choice = draw(st.sampled_from(["canary", "value", "remove"]))
        if choice == "remove":
            node.pop(path[-1], None)
        else:
            node[path[-1]] = CANARY if choice == "canary" else draw(json_values)
    if draw(st.booleans()):
        base[draw(st.text(max_size=8))] = CANARY
    return signal_type, base


@fuzz_settings(300)
@given(data_for_a_type())
def test_validation_gives_canonical_data_or_a_quiet_rejection(case):
    signal_type, data = case
    schema = REGISTRY.get(signal_type)
    before = copy.deepcopy(data)
    validated, error = attempt(lambda: schema.validate(data, signal_id="fuzz-1"), SignalRejected)
    if isinstance(error, SignalRejected):
        assert error.code in {"schema_violation", "invalid_identifier"}
        assert error.message.strip()
        assert CANARY not in str(error)
    else:
        assert validated is not None
        result, identifiers = validated
        for path, canonical in identifiers.items():
            assert normalise(schema.identifier_kinds[path], canonical) == canonical
            node: Any = result
            for part in path.split("."):
                node = node[part]
            assert node == canonical
    assert data == before, "validation must not change its input"
