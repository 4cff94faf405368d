"""The outcome annotations of signal schemas: ``x-outcome`` and ``x-approval``, strictly read."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from services.core.schema_registry import (
    OUTCOME_CLASSES,
    SchemaDefinitionError,
    SchemaRegistry,
    default_schema_dir,
)

SHIPPED = SchemaRegistry.load(default_schema_dir())
FINDING = json.loads(
    (default_schema_dir() / "police.location_finding.v1.json").read_text(encoding="utf-8")
)
APPROVAL = json.loads(
    (default_schema_dir() / "prosecution.case_approval.v1.json").read_text(encoding="utf-8")
)


def load(tmp_path: Path, document: dict[str, Any]) -> SchemaRegistry:
    (tmp_path / f"{document['x-signal-type']}.json").write_text(json.dumps(document))
    return SchemaRegistry.load(tmp_path)


def test_shipped_outcome_classes():
    classes = {t: SHIPPED.get(t).outcome for t in SHIPPED.types() if SHIPPED.get(t).outcome}
    assert classes == {
        "police.location_finding.v1": "finding",
        "police.nothing_found.v1": "no_finding",
        "municipality.closure_order.v1": "measure",
        "housing.lease_termination.v1": "measure",
        "energy.theft_claim.v1": "measure",
        "social.benefits_decision.v1": "measure",
        "environment.dumping_cleanup.v1": "measure",
    }
    assert [t for t in SHIPPED.types() if SHIPPED.get(t).approval] == [
        "prosecution.case_approval.v1"
    ]
    assert set(classes.values()) == set(OUTCOME_CLASSES)
    # the indicator types are neither
    assert SHIPPED.get("energy.consumption_anomaly.v1").outcome is None
    assert not SHIPPED.get("energy.consumption_anomaly.v1").approval


def test_an_unknown_outcome_class_is_refused_naming_the_file(tmp_path):
    document = copy.deepcopy(FINDING)
    document["x-outcome"] = "success"
    with pytest.raises(SchemaDefinitionError, match=r"police.location_finding.v1.json.*x-outcome"):
        load(tmp_path, document)


def test_an_outcome_without_a_premises_to_match_by_is_refused(tmp_path):
    document = copy.deepcopy(FINDING)
    document["x-location-fields"] = []
    with pytest.raises(SchemaDefinitionError, match="address, bag or ean"):
        load(tmp_path, document)


def test_an_approval_must_say_approved_or_refused_about_a_named_outcome(tmp_path):
    document = copy.deepcopy(APPROVAL)
    document["properties"]["decision"]["enum"] = ["approved", "pending"]
    with pytest.raises(SchemaDefinitionError, match="approved and refused"):
        load(tmp_path, document)
    document = copy.deepcopy(APPROVAL)
    del document["properties"]["outcome_signal_id"]
    document["required"].remove("outcome_signal_id")
    with pytest.raises(SchemaDefinitionError, match="outcome_signal_id"):
        load(tmp_path, document)


def test_a_type_is_not_both_an_outcome_and_an_approval(tmp_path):
    document = copy.deepcopy(APPROVAL)
    document["x-outcome"] = "finding"
    with pytest.raises(SchemaDefinitionError, match="not both"):
        load(tmp_path, document)
