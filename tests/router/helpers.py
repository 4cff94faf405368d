"""Shared pieces of the router tests: a policy source on the shipped covenants, traffic."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from services.config import ROOT, Loaded, Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.demo import generate
from services.keys.testing import MemoryKeyStore
from services.router.policy_source import PolicySource

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
COVENANTS = [ROOT / "covenants"]


def policy_source(
    covenants: list[Path] | None = None, keys: MemoryKeyStore | None = None, *, demo: bool = True
) -> PolicySource:
    """The router's policy source; in demo mode (the default) TEST keys sign the traffic."""
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(keys or MemoryKeyStore.for_tests())
    chosen = covenants or COVENANTS

    def load(today: date) -> Loaded:
        return load_policy(
            chosen, paths.schemas, paths.reference, pseudonymiser, today=today, demo=demo
        )

    return PolicySource(load, chosen, today=NOW.date)


def traffic(count: int, seed: int = 11) -> list[dict[str, object]]:
    return generate(count, seed=seed, start=datetime(2026, 9, 1, tzinfo=UTC)).signals


def lines(signals: list[dict[str, object]]) -> list[bytes]:
    return [orjson.dumps(s) for s in signals]
