"""Coverage-guided fuzzing (atheris / libFuzzer) of the hub's input boundaries (``make fuzz``).

Targets, each with the contract the hypothesis tests in tests/fuzz/ check too:

* ``signal``    — any bytes on a signals topic, through the router's batch step: decisions or
  one dead letter with a code and reason, never an exception;
* ``covenant``  — any text as a covenant file, loaded and checked: a covenant or problems
  with file and line, never an exception;
* ``condition`` — any text as a rule's ``when``: a ConditionError, or a compiled condition
  that returns a bool or raises ConditionEvaluationError on sample signals.

A hang is caught by libFuzzer's ``-timeout``. Crashing inputs land in ``out/fuzz/``; once the
bug is fixed, copy the input into ``tests/fuzz/corpus/<target>/`` as a regression test.

    .venv/bin/python fuzz/harness.py TARGET [libFuzzer options, e.g. -max_total_time=60]
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import atheris  # type: ignore[import-untyped,unused-ignore]  # optional extra: .[fuzz]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

with atheris.instrument_imports(include=["services"], enable_loader_override=False):
    from services.config import Paths, load_policy
    from services.core.covenant.checker import check
    from services.core.covenant.condition import compile_condition
    from services.core.covenant.loader import parse_covenant
    from services.core.errors import ConditionError, ConditionEvaluationError
    from services.core.pseudonyms import Pseudonymiser
    from services.keys.testing import MemoryKeyStore
    from services.router.batch import Consumed, route_batch

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
TODAY = date(2026, 11, 22)
PATHS = Paths.from_env({})
LOADED = load_policy(
    [ROOT / "covenants"],
    PATHS.schemas,
    PATHS.reference,
    Pseudonymiser(MemoryKeyStore.for_tests()),
    today=TODAY,
    demo=True,
)
if LOADED.policy is None:
    raise SystemExit("the shipped covenants have errors; run `schakel covenant check covenants`")
POLICY = LOADED.policy
VARIABLES = frozenset({"data", "source", "type", "time"})
CONSTANTS = {"regions": {"riec_nh": ["GM0361", "GM0363"]}}
SAMPLES: list[dict[str, Any]] = [
    {
        "data": {"score": 0.9, "municipality": "GM0363"},
        "source": "liander",
        "type": "t",
        "time": "x",
    },
    {"data": {}, "source": "pwn", "type": "t", "time": "2026-11-01T10:00:00Z"},
    {"data": [], "source": None, "type": 1, "time": None},
]


def fuzz_signal(data: bytes) -> None:
    records = [Consumed("signals.liander", 0, 0, data), Consumed("signals.pwn", 0, 1, data)]
    routed = route_batch(records, LOADED.registry, POLICY, NOW)
    if routed.signals != 2 or len(routed.audit) < 2:
        raise AssertionError("a record was not accounted for")


def fuzz_covenant(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    loaded = parse_covenant(text, "fuzz.yaml")
    for problem in check(loaded, LOADED.registry, LOADED.reference, today=TODAY).problems:
        if problem.file != "fuzz.yaml" or problem.line < 0:
            raise AssertionError(f"a problem without file and line: {problem}")


def fuzz_condition(data: bytes) -> None:
    source = data.decode("utf-8", "replace")
    try:
        condition = compile_condition(source, variables=VARIABLES, constants=CONSTANTS)
    except ConditionError:
        return
    for sample in SAMPLES:
        try:
            result = condition(sample)
        except ConditionEvaluationError:
            continue
        if not isinstance(result, bool):
            raise AssertionError("a condition returned a non-bool")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "signal": fuzz_signal,
    "covenant": fuzz_covenant,
    "condition": fuzz_condition,
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        raise SystemExit(f"usage: harness.py {{{','.join(TARGETS)}}} [libFuzzer options]")
    target = sys.argv.pop(1)
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
