"""Shared settings and input generators of the fuzz and property tests.

Every property runs a bounded, derandomised number of examples with the example database off,
so ``make test`` is fast and gives the same verdict on every run. To hunt for new failures,
set ``SCHAKEL_FUZZ_EXAMPLES`` (e.g. 20000) and ``SCHAKEL_FUZZ_RANDOM=1``; keep any input that
breaks something in ``tests/fuzz/corpus/`` (see test_corpus.py).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from services.demo import generate
from services.demo.keys import DemoSigner

EXAMPLES = int(os.environ.get("SCHAKEL_FUZZ_EXAMPLES", "0")) or None
RANDOM = os.environ.get("SCHAKEL_FUZZ_RANDOM") == "1"


def fuzz_settings(max_examples: int = 300) -> settings:
    """Bounded, deterministic hypothesis settings (scaled up by SCHAKEL_FUZZ_EXAMPLES)."""
    return settings(
        max_examples=EXAMPLES or max_examples,
        deadline=None,  # the per-test timeout catches a hang; wall-clock deadlines flake
        derandomize=not RANDOM,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@cache
def demo_signals() -> tuple[bytes, ...]:
    """One well-formed demo signal of every type the demo generates, as JSON bytes."""
    traffic = generate(400, seed=5, start=datetime(2026, 9, 1, tzinfo=UTC), malformed_ratio=0.0)
    by_type: dict[str, bytes] = {}
    for item in traffic.signals:
        by_type.setdefault(str(item["type"]), orjson.dumps(item))
    return tuple(by_type[t] for t in sorted(by_type))


# JSON values of every kind, small, including the awkward ones (huge ints, NaN-free floats,
# control characters, surrogates are impossible in JSON text so left out).
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_envelopes(draw: st.DrawFn) -> dict[str, Any]:
    """A demo envelope with some attributes or data fields replaced, removed or added."""
    base: dict[str, Any] = orjson.loads(draw(st.sampled_from(demo_signals())))
    data: dict[str, Any] = dict(base["data"])
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(["envelope", "data"]))
        which = base if target == "envelope" else data
        keys = sorted(which) or ["x"]
        key = draw(st.one_of(st.sampled_from(keys), st.text(max_size=10)))
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove":
            which.pop(key, None)
        else:
            which[key] = draw(json_values)
    if "data" not in base or isinstance(base["data"], dict):
        base["data"] = data
    return base


SIGN = DemoSigner()


@st.composite
def signed_mutations(draw: st.DrawFn) -> bytes:
    """A mutated demo envelope signed again with its partner's test key, so that it passes
    the signature check and reaches schema validation and the policy."""
    envelope = draw(mutated_envelopes())
    if isinstance(envelope.get("source"), str) and envelope["source"]:
        # a number RFC 8785 cannot write stays unsigned
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            envelope = SIGN({k: v for k, v in envelope.items() if k != "signature"})
    return dumps(envelope)


T = TypeVar("T")


def attempt(call: Callable[[], T], *expected: type[Exception]) -> tuple[T | None, Exception | None]:
    """(result, None), or (None, the exception) when ``call`` raises one of ``expected``.

    Anything else propagates: that is the failure the fuzz tests look for.
    """
    try:
        return call(), None
    except expected as exc:
        return None, exc


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``; the standard library also writes integers beyond 64 bits."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def raw_inputs() -> st.SearchStrategy[bytes]:
    """Bytes a partner could put on a signals topic: garbage, JSON, near-valid envelopes."""
    return st.one_of(
        st.binary(max_size=400),
        st.text(max_size=200).map(str.encode),
        json_values.map(dumps),
        mutated_envelopes().map(dumps),
        signed_mutations(),
        st.sampled_from(demo_signals()),
    )
