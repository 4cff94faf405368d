"""Shared set-up of the stacking tests: the shipped covenants and stacking rule, test keys."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from services.config import Paths, load_policy
from services.core.policy import Policy
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.core.schema_registry import SchemaRegistry
from services.core.stacking.config import StackingConfig
from services.core.stacking.engine import Snapshot, Stacker
from services.core.stacking.extract import Extractor
from services.core.stacking.purpose import StackingRules
from services.keys.testing import MemoryKeyStore
from services.router.topics import signals_topic
from services.stacking.batch import Record, StackingStep
from services.stacking.config_files import load_stacking_config

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
"""Decisions are made as of this moment (the covenants of 2025 are in force)."""


@dataclass
class Hub:
    registry: SchemaRegistry
    policy: Policy
    pseudonymiser: Pseudonymiser
    config: StackingConfig
    rules: StackingRules

    def step(
        self, snapshot: Snapshot | None = None, config: StackingConfig | None = None
    ) -> StackingStep:
        config = config or self.config
        return StackingStep(
            self.registry,
            self.policy,
            self.rules,
            Extractor(config, self.pseudonymiser, self.rules.partner_kinds),
            Stacker(config, snapshot),
        )

    def location(self, address: str) -> str:
        """The internal pseudonym that keys a location by its canonical address."""
        return self.pseudonymiser.pseudonym(INTERNAL, "address", address)


def make_hub() -> Hub:
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(MemoryKeyStore.for_tests())
    loaded = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        pseudonymiser,
        today=NOW.date(),
        demo=True,
    )
    assert loaded.policy is not None, [str(p) for p in loaded.checked.errors]
    config = load_stacking_config(paths.covenants)
    return Hub(
        loaded.registry,
        loaded.policy,
        pseudonymiser,
        config,
        StackingRules(loaded.policy, config.purpose),
    )


def records(envelopes: Iterable[dict[str, Any]]) -> list[Record]:
    return [Record(signals_topic(e["source"]), orjson.dumps(e)) for e in envelopes]
