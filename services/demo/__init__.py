"""Simulated partners: realistic, deterministic Noord-Holland signal traffic with ground truth.

Used for the example files in ``examples/``, for ``schakel demo generate``, for the live
``--demo`` mode and for tests of validation, routing and stacking. See
:mod:`services.demo.generator` for what the traffic contains.
"""

from services.demo.generator import (
    TRUTH_WARNING,
    DemoTraffic,
    generate,
    planted_count,
    stream,
    to_jsonl,
    truth,
)
from services.demo.malformed import MALFORMED_KINDS, MalformedLine
from services.demo.planting import Decoy, PlantedLocation

__all__ = [
    "MALFORMED_KINDS",
    "TRUTH_WARNING",
    "Decoy",
    "DemoTraffic",
    "MalformedLine",
    "PlantedLocation",
    "generate",
    "planted_count",
    "stream",
    "to_jsonl",
    "truth",
]
