"""Small builders shared by the core tests: signals, covenant text, a compiled policy."""

from __future__ import annotations

import textwrap
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from services.config import ROOT
from services.core.covenant.checker import CheckResult, check
from services.core.covenant.compiler import compile_policy
from services.core.covenant.loader import LoadResult, load_files, parse_covenant
from services.core.policy import Policy
from services.core.pseudonyms import Pseudonymiser
from services.core.regions import ReferenceData
from services.core.schema_registry import SchemaRegistry, default_schema_dir
from services.core.signal import Signal, accept_bytes
from services.keys.testing import MemoryKeyStore

TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
EAN = "871685900000000011"  # valid GS1 check digit
ADDRESS = "1811AB 12A"
REGISTRY = SchemaRegistry.load(default_schema_dir())
REFERENCE = ReferenceData.load()
COVENANTS = ROOT / "covenants"


def keys() -> MemoryKeyStore:
    return MemoryKeyStore.for_tests()


def anomaly(
    *,
    signal_id: str = "liander-000001",
    source: str = "liander",
    score: float = 0.93,
    municipality: str = "GM0361",
    **data: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ean": EAN,
        "address": "1811 ab 12-a",
        "municipality": municipality,
        "score": score,
        "period": {"start": "2026-10-01", "end": "2026-10-31"},
        "kwh_expected": 310.0,
        "kwh_observed": 1490.5,
    }
    body.update(data)
    return {
        "specversion": "1.0",
        "id": signal_id,
        "source": source,
        "type": "energy.consumption_anomaly.v1",
        "time": "2026-11-01T10:00:00Z",
        "data": body,
    }


def signal(envelope: dict[str, Any]) -> Signal:
    return accept_bytes(orjson.dumps(envelope), REGISTRY)


def covenant_text(rules: str = "", **overrides: str) -> str:
    """A small valid covenant with liander -> riec-nh/politie-nh; ``rules`` is YAML.

    Its suppliers have no keys, so it says ``signatures: optional`` unless overridden (signing
    is tested in tests/core/test_signing*.py).
    """
    fields = {
        "covenant": "test-covenant",
        "version": '"1"',
        "valid": "{from: 2025-01-01, until: 2027-12-31}",
        "revoked": "",
        "signatures": "optional",
    }
    fields.update(overrides)
    revoked = f"revoked: {fields['revoked']}\n" if fields["revoked"] else ""
    return (
        textwrap.dedent(
            f"""\
            covenant: {fields["covenant"]}
            version: {fields["version"]}
            title: Test covenant
            legal_basis: ["AVG art. 6 lid 1 sub e", "AVG art. 10 jo. UAVG art. 33"]
            dpia: {{reference: "DPIA test covenant", date: 2024-12-01}}
            purposes:
              signalering: Signaleren
            valid: {fields["valid"]}
            signatures: {fields["signatures"]}
            """
        )
        + revoked
        + textwrap.dedent(
            """\
            parties:
              liander: {name: Liander, kind: energy, roles: [supplier]}
              pwn: {name: PWN, kind: water, roles: [supplier]}
              riec-nh: {name: RIEC NH, kind: riec, roles: [recipient]}
              politie-nh: {name: Politie NH, kind: police, roles: [recipient]}
              gemeente-alkmaar: {name: Alkmaar, kind: municipality, municipality: GM0361, roles: [recipient]}
            regions:
              riec_nh: {riec: RIEC Noord-Holland}
            rules:
            """
        )
        + textwrap.indent(textwrap.dedent(rules), "  ")
    )


ANOMALY_RULE = """\
- id: anomaly-to-riec
  article: "art. 4 lid 2"
  purpose: signalering
  from: [liander]
  types: [energy.consumption_anomaly.v1]
  to: [riec-nh]
  when: data.municipality in regions.riec_nh && data.score >= 0.8
  share: {ean: pseudonymise, address: "generalise:postcode4", municipality: keep, score: keep, period: "generalise:week"}
  retention: P180D
  reidentify: on-request
"""


def load_texts(*texts: str) -> LoadResult:
    result = LoadResult()
    for i, text in enumerate(texts):
        one = parse_covenant(text, f"covenant-{i}.yaml")
        result.covenants.extend(one.covenants)
        result.problems.extend(one.problems)
    return result


def checked(*texts: str, today: date = TODAY) -> CheckResult:
    return check(load_texts(*texts), REGISTRY, REFERENCE, today=today)


def policy(*texts: str, today: date = TODAY, store: MemoryKeyStore | None = None) -> Policy:
    result = checked(*texts, today=today)
    assert result.ok, [str(p) for p in result.errors]
    return compile_policy(result, REGISTRY, Pseudonymiser(store or keys()))


def shipped_policy(folder: Path = COVENANTS, today: date = TODAY) -> Policy:
    """The policy of the covenant files in ``folder`` (the shipped ones by default), in demo
    mode: the demo partners' TEST keys (``demo/keys.yaml``) are registered and accepted."""
    result = check(load_files([folder], demo=True), REGISTRY, REFERENCE, today=today)
    assert result.ok, [str(p) for p in result.errors]
    return compile_policy(result, REGISTRY, Pseudonymiser(keys()))


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path
