"""From the moment a change is loaded (services/router/policy_source.py), an ended covenant or
a removed party delivers nothing: over random covenants, signals and the kind of change.

The router's own batch step is used after the reload, so this is what a running worker does.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from services.config import Loaded
from services.core.covenant.checker import check
from services.core.covenant.compiler import compile_policy
from services.core.covenant.loader import load_files
from services.core.pseudonyms import Pseudonymiser
from services.router.batch import Consumed, route_batch
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic
from tests.core.builders import REFERENCE, REGISTRY, keys
from tests.fuzz.strategies import fuzz_settings
from tests.properties.generators import (
    RECIPIENTS,
    GeneratedCovenant,
    GeneratedRule,
    anomalies,
    covenants,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PSEUDONYMISER = Pseudonymiser(keys())


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def today(self) -> date:
        return self.now.date()


def source_for(folder: Path, clock: Clock) -> PolicySource:
    def load(today: date) -> Loaded:
        # what services.config.load_policy does, with the schemas and reference data loaded once
        checked = check(load_files([folder], demo=True), REGISTRY, REFERENCE, today=today)
        policy = compile_policy(checked, REGISTRY, PSEUDONYMISER) if checked.ok else None
        return Loaded(REGISTRY, REFERENCE, checked, policy)

    return PolicySource(load, [folder], today=clock.today)


def write(file: Path, text: str) -> None:
    file.write_text(text, encoding="utf-8")
    stamp = file.stat().st_mtime_ns + 1_000_000_000  # a change the fingerprint cannot miss
    os.utime(file, ns=(stamp, stamp))


def route(source: PolicySource, envelopes: list[dict[str, object]], now: datetime):
    records = [
        Consumed(signals_topic("liander"), 0, i, orjson.dumps(e)) for i, e in enumerate(envelopes)
    ]
    current = source.current
    return route_batch(records, current.registry, current.policy, now)


def without_party(covenant: GeneratedCovenant, party: str) -> str:
    rules = tuple(
        GeneratedRule(
            rule.rule_id,
            tuple(r for r in rule.recipients if r != party),
            rule.share,
            rule.condition,
        )
        for rule in covenant.rules
    )
    kept = GeneratedCovenant(covenant.covenant_id, tuple(r for r in rules if r.recipients))
    text = kept.text() if kept.rules else covenant.text().split("rules:\n")[0] + "rules: []\n"
    return "".join(
        line for line in text.splitlines(keepends=True) if not line.startswith(f"  {party}:")
    )


CHANGES = st.sampled_from(["revoke-today", "revoke-earlier", "remove-party"])


@fuzz_settings(30)
@given(
    covenants(), st.lists(anomalies(), min_size=2, max_size=5), CHANGES, st.sampled_from(RECIPIENTS)
)
def test_an_ended_covenant_or_removed_party_delivers_nothing_once_loaded(
    covenant, envelopes, change, party
):
    envelopes = [dict(e, id=f"liander-{i:06d}") for i, e in enumerate(envelopes)]
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        file = folder / "test.yaml"
        write(file, covenant.text())
        source = source_for(folder, clock)
        before = route(source, envelopes, NOW)
        assert not before.dead_letters
        if change == "revoke-today":
            write(file, covenant.text(revoked="{date: 2026-11-22, reason: partner left}"))
        elif change == "revoke-earlier":
            write(file, covenant.text(revoked="{date: 2026-06-01, reason: court ruling}"))
        else:
            write(file, without_party(covenant, party))
        assert source.maybe_reload(), "the change must be loaded"
        after = route(source, envelopes, NOW)
        if change == "remove-party":
            assert not [e for e in after.outbox if e.recipient == party]
            assert party not in {r["recipient"] for r in after.audit}
            assert party not in source.current.policy.recipients
        else:
            assert after.outbox == [] and after.delivered == 0
            for record in after.audit:
                assert record["result"] == "withheld" and "revoked" in record["reason"]


@fuzz_settings(20)
@given(covenants(), st.lists(anomalies(), min_size=1, max_size=4))
def test_a_covenant_delivers_nothing_from_the_day_after_its_last_day(covenant, envelopes):
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder / "test.yaml", covenant.text(valid="{from: 2025-01-01, until: 2026-11-22}"))
        source = source_for(folder, clock)
        clock.now = NOW + timedelta(days=1)
        source.request_reload()  # the daily re-check of the covenant files
        source.maybe_reload()
        after = route(source, envelopes, clock.now)
        assert after.outbox == [] and after.delivered == 0
        assert all("expired on 2026-11-22" in r["reason"] for r in after.audit)


def test_shortening_validity_into_the_past_stops_delivery_once_loaded(tmp_path):
    from tests.core.builders import anomaly

    covenant = GeneratedCovenant(
        "test-covenant", (GeneratedRule("rule-0", ("riec-nh",), {"score": "keep"}, None),)
    )
    clock = Clock()
    file = tmp_path / "test.yaml"
    write(file, covenant.text())
    source = source_for(tmp_path, clock)
    assert route(source, [anomaly()], NOW).delivered == 1
    write(file, covenant.text(valid="{from: 2025-01-01, until: 2026-11-01}"))
    source.maybe_reload()
    assert route(source, [anomaly()], NOW).delivered == 0
