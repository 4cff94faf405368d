"""Replays every input in tests/fuzz/corpus/ that once broke something (see its README)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from services.core.covenant.checker import check
from services.core.covenant.loader import parse_covenant
from services.router.batch import Consumed, route_batch
from services.router.topics import signals_topic
from tests.core.builders import REFERENCE, REGISTRY, TODAY
from tests.fuzz.strategies import attempt
from tests.fuzz.test_condition_fuzz import REGIONS, VARIABLES
from tests.router.helpers import policy_source

CORPUS = Path(__file__).parent / "corpus"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _files(kind: str) -> list[Path]:
    return sorted(p for p in (CORPUS / kind).glob("*") if p.is_file())


@pytest.mark.timeout(60)  # before the fix, billion-laughs.yaml ran for days
@pytest.mark.parametrize("path", _files("covenant"), ids=lambda p: p.name)
def test_covenant_corpus_is_reported_with_a_line(path: Path):
    text = path.read_text(encoding="utf-8")
    loaded = parse_covenant(text, path.name)
    checked = check(loaded, REGISTRY, REFERENCE, today=TODAY)
    assert not checked.ok
    for problem in checked.errors:
        assert str(problem).startswith(f"{path.name}:")


@pytest.mark.parametrize("path", _files("signal"), ids=lambda p: p.name)
def test_signal_corpus_routes_without_raising(path: Path):
    current = policy_source().current
    value = path.read_bytes()
    try:
        partner = str(orjson.loads(value)["source"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        partner = "liander"
    routed = route_batch(
        [Consumed(signals_topic(partner), 0, 0, value)], current.registry, current.policy, NOW
    )
    assert routed.signals == 1
    for letter in routed.dead_letters:
        body = orjson.loads(letter.value)
        assert body["code"] and body["reason"]


@pytest.mark.parametrize("path", _files("condition"), ids=lambda p: p.name)
def test_condition_corpus_compiles_or_fails_cleanly(path: Path):
    from services.core.covenant.condition import compile_condition
    from services.core.errors import ConditionError, ConditionEvaluationError

    source = path.read_text(encoding="utf-8")
    condition, _ = attempt(
        lambda: compile_condition(source, variables=VARIABLES, constants=REGIONS), ConditionError
    )
    if condition is None:
        return
    activation = {"data": {}, "source": "liander", "type": "x.y.v1", "time": "2026-01-01T00:00:00Z"}
    result, error = attempt(lambda: condition(activation), ConditionEvaluationError)
    assert isinstance(result, bool) or isinstance(error, ConditionEvaluationError)
