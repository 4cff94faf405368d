"""Shared set-up of the outcome tests: the shipped covenants in demo mode, signed envelopes of
indicator signals, outcomes and approvals, and the step that turns them into returns."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.config import Paths, load_policy
from services.core.outcomes.returns import ReturnBatch
from services.core.policy import Policy
from services.core.pseudonyms import INTERNAL, Pseudonymiser
from services.core.schema_registry import SchemaRegistry
from services.demo.keys import DemoSigner
from services.keys.testing import MemoryKeyStore
from services.outcomes.batch import Extracted, OutcomeStep, Record
from services.outcomes.store import OutcomeStore
from services.outcomes.testing import MemoryOutcomeStore
from services.router.topics import signals_topic

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
"""Decisions are made as of this moment (drugslocaties-nh@2025.1 is in force)."""
ADDRESS = "1811 ab 12-a"
CANONICAL = "1811AB 12A"
BAG = "0361010000123456"
EAN = "871685900000000011"
SIGN = DemoSigner()
_ids = itertools.count(1)


def at(days_before_now: float) -> str:
    return (NOW - timedelta(days=days_before_now)).isoformat().replace("+00:00", "Z")


def envelope(source: str, signal_type: str, data: dict[str, Any], *, days_ago: float,
             signal_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    return SIGN(
        {
            "specversion": "1.0",
            "id": signal_id or f"{source}-{next(_ids):06d}",
            "source": source,
            "type": signal_type,
            "time": at(days_ago),
            "data": data,
        }
    )


def anomaly(days_ago: float = 60, *, address: str = ADDRESS, ean: str = EAN, score: float = 0.93,
            source: str = "liander", signal_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    return envelope(
        source,
        "energy.consumption_anomaly.v1",
        {
            "ean": ean,
            "address": address,
            "municipality": "GM0361",
            "score": score,
            "period": {"start": "2026-08-01", "end": "2026-08-31"},
            "kwh_expected": 300.0,
            "kwh_observed": 1500.0,
        },
        days_ago=days_ago,
        signal_id=signal_id,
    )


def observation(days_ago: float = 50, *, address: str = ADDRESS, source: str = "woonwaard",
                signal_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    return envelope(
        source,
        "housing.observation.v1",
        {
            "address": address,
            "bag": BAG,
            "municipality": "GM0361",
            "observations": ["smell_cannabis", "taped_windows"],
            "observer_role": "caretaker",
            "confidence": 0.7,
            "observed_at": at(days_ago),
        },
        days_ago=days_ago,
        signal_id=signal_id,
    )


def water(days_ago: float = 40, *, address: str = ADDRESS, signal_id: str | None = None
          ) -> dict[str, Any]:  # fmt: skip
    return envelope(
        "pwn",
        "water.abnormal_use.v1",
        {
            "address": address,
            "municipality": "GM0361",
            "score": 0.85,
            "period": {"start": "2026-09-01", "end": "2026-09-30"},
            "m3_expected": 9.5,
            "m3_observed": 41.0,
            "pattern": "night_use",
        },
        days_ago=days_ago,
        signal_id=signal_id,
    )


def finding(days_ago: float = 2, *, address: str = ADDRESS, signal_id: str | None = None,
            municipality: str = "GM0361", **extra: Any) -> dict[str, Any]:  # fmt: skip
    data: dict[str, Any] = {
        "address": address,
        "municipality": municipality,
        "finding": "cannabis_grow",
        "found_at": at(days_ago),
        "dismantled": True,
        "plants": 380,
        "meter_bypassed": True,
        "water_bypassed": False,
    }
    data.update(extra)
    return envelope("politie-nh", "police.location_finding.v1", data, days_ago=days_ago,
                    signal_id=signal_id)  # fmt: skip


def nothing_found(days_ago: float = 2, *, address: str = ADDRESS, source: str = "politie-nh",
                  signal_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    return envelope(
        source,
        "police.nothing_found.v1",
        {
            "address": address,
            "municipality": "GM0361",
            "check_kind": "police_visit",
            "checked_at": at(days_ago),
        },
        days_ago=days_ago,
        signal_id=signal_id,
    )


def approval(outcome: dict[str, Any], decision: str = "approved", days_ago: float = 1
             ) -> dict[str, Any]:  # fmt: skip
    return envelope(
        "om-nh",
        "prosecution.case_approval.v1",
        {
            "municipality": "GM0361",
            "outcome_source": outcome["source"],
            "outcome_signal_id": outcome["id"],
            "decision": decision,
            "decided_at": at(days_ago),
        },
        days_ago=days_ago,
    )


_received = itertools.count(1)


def records(envelopes: Iterable[dict[str, Any]], now: datetime = NOW) -> list[Record]:
    """Records as the broker hands them over: each with a receipt timestamp a little before
    ``now``, later than every record made before it (the hub receives them in this order)."""
    return [
        Record(
            signals_topic(e["source"]),
            orjson.dumps(e),
            now - timedelta(hours=1) + timedelta(milliseconds=next(_received)),
        )
        for e in envelopes
    ]


@dataclass
class Hub:
    registry: SchemaRegistry
    policy: Policy
    pseudonymiser: Pseudonymiser
    store: OutcomeStore = field(default_factory=MemoryOutcomeStore)

    @property
    def step(self) -> OutcomeStep:
        return OutcomeStep.build(self.registry, self.policy, self.pseudonymiser)

    def feed(self, envelopes: Iterable[dict[str, Any]], now: datetime = NOW
             ) -> tuple[Extracted, ReturnBatch]:  # fmt: skip
        """One batch through extract → write → decide, as the worker runs it."""
        step = self.step
        extracted = step.extract(records(envelopes, now), now)
        self.store.write(extracted.entries)
        return extracted, step.decide(extracted.entries, self.store, now)

    def location(self, canonical: str = CANONICAL) -> str:
        return self.pseudonymiser.pseudonym(INTERNAL, "address", canonical)


def make_hub(store: OutcomeStore | None = None, keys: MemoryKeyStore | None = None) -> Hub:
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(keys or MemoryKeyStore.for_tests())
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference, pseudonymiser,
        today=NOW.date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None, [str(p) for p in loaded.checked.errors]
    return Hub(loaded.registry, loaded.policy, pseudonymiser, store or MemoryOutcomeStore())


def messages(batch: ReturnBatch) -> dict[str, list[dict[str, Any]]]:
    """The delivered feed messages per recipient."""
    out: dict[str, list[dict[str, Any]]] = {}
    for item in batch.feed:
        out.setdefault(item.recipient, []).append(orjson.loads(item.value))
    return out
