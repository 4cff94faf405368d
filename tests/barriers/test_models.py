"""Barrier models as data: the shipped ones load and match the signal schemas; broken files
are reported with file and line."""

from __future__ import annotations

import pytest

from services.config import Paths
from services.core.barriers.loader import (
    DEFAULT_BARRIERS,
    BarrierModelError,
    load_models,
    parse_model,
)
from services.core.barriers.matrix import unknown_steps
from services.core.schema_registry import SchemaRegistry

GOOD = """\
model: cannabis
title: Test
steps:
  - id: cannabis.cultivate
    name: Cultivate
    opportunities: [Hidden power use]
    facilitators:
      witting: [Caretakers]
      unwitting: [Neighbours]
    barriers:
      - by: energy
        measure: Report anomalies
  - id: cannabis.harvest
    name: Harvest
    opportunities: [Short windows]
    facilitators: {}
"""


def test_the_shipped_models_follow_the_business_processes_of_product_md():
    models = {m.model: m for m in load_models()}
    assert [s.split(".")[1] for s in models["cannabis"].step_ids] == [
        "organise_finance",
        "acquire_location",
        "fit_out",
        "cultivate",
        "harvest",
        "sell_transport",
        "launder",
    ]
    assert [s.split(".")[1] for s in models["synthetic"].step_ids] == [
        "acquire_raw_materials",
        "acquire_location",
        "fit_out",
        "produce",
        "store",
        "dispose_waste",
        "transport_distribute",
        "launder",
    ]
    for model in models.values():
        for step in model.steps:
            assert step.opportunities and step.barriers
            assert step.facilitators.witting or step.facilitators.unwitting


def test_every_step_a_signal_schema_names_is_defined_by_a_model():
    registry = SchemaRegistry.load(Paths.from_env({}).schemas)
    assert unknown_steps(load_models(), registry) == {}
    named = {s for t in registry.types() for s in registry.get(t).barrier_steps}
    assert named  # the check has something to check


def test_an_undefined_step_in_a_schema_is_found():
    registry = SchemaRegistry.load(Paths.from_env({}).schemas)
    (only,) = parse_model(GOOD, "good.yaml").models
    found = unknown_steps([only], registry)
    assert "synthetic.produce" in found["energy.consumption_anomaly.v1"]
    assert "cannabis.cultivate" not in found.get("energy.consumption_anomaly.v1", [])


def test_a_good_file_parses():
    result = parse_model(GOOD, "good.yaml")
    assert result.problems == []
    assert result.models[0].step_ids == ("cannabis.cultivate", "cannabis.harvest")


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ("    name: Harvest\n", "    nam: Harvest\n", 14, "steps.1.nam: unknown key"),
        ("    name: Harvest\n", "", 13, "steps.1.name: required key is missing"),
        ("      - by: energy\n", "      - by: bakery\n", 11, "steps.0.barriers.0.by"),
        ("  - id: cannabis.harvest\n", "  - id: synthetic.harvest\n", 13, "must start with"),
        ("  - id: cannabis.harvest\n", "  - id: cannabis.cultivate\n", 13, "appears twice"),
        ("title: Test\n", "title: Test\ntitle: Again\n", 3, "duplicate key 'title'"),
        ("    opportunities: [Short windows]\n", "    opportunities: [Short\n", 16, "YAML syntax"),
    ],
)
def test_problems_name_file_and_line(old, new, line, message):
    broken = GOOD.replace(old, new)
    assert broken != GOOD
    problems = parse_model(broken, "broken.yaml").problems
    assert problems, broken
    assert any(p.line == line and message in p.message for p in problems), [
        str(p) for p in problems
    ]
    assert all(str(p).startswith("broken.yaml:") for p in problems)


def test_load_models_reports_every_problem_of_every_file(tmp_path):
    (tmp_path / "a.yaml").write_text(GOOD.replace("    name: Harvest\n", ""), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("", encoding="utf-8")
    (tmp_path / "c.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "d.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(BarrierModelError) as caught:
        load_models([tmp_path])
    text = str(caught.value)
    assert "a.yaml:13" in text and "b.yaml:0: error: file is empty" in text
    assert "model 'cannabis' is defined twice" in text


def test_the_shipped_folder_is_not_read_as_covenants():
    from services.core.covenant.loader import covenant_files

    assert not [f for f in covenant_files(Paths.from_env({}).covenants) if "barriers" in f.parts]
    assert sorted(p.name for p in DEFAULT_BARRIERS.glob("*.yaml")) == [
        "cannabis.yaml",
        "synthetic.yaml",
    ]


def test_the_shipped_models_say_they_are_the_projects_own_reconstruction():
    from services.core.barriers.loader import load_models

    for model in load_models():
        assert model.provenance is not None
        assert "own reconstruction in the spirit of the CCV" in model.provenance
        assert "not a CCV publication" in model.provenance
