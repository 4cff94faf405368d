"""The soak's input: the demo mix, crafted edge cases, and signals carrying canary identifiers.

A canary is a unique, valid identifier (EAN, address, BAG id) planted in a signal whose
covenants do not let it out raw. After the soak every output of the hub is scanned for it;
the only place it may appear is the feed of a recipient whose rule keeps that field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from services.core.identifiers import ean_check_digit, normalise
from services.core.schema_registry import SchemaRegistry
from services.demo import generate
from services.demo.keys import DemoSigner
from services.router.topics import signals_topic

CANARY_KINDS = ("ean", "address", "bag")
CANARY_PATTERN = re.compile(r"87169977[0-9]{10}|099901[0-9]{10}|9[0-9]{3} ?ZX [0-9]{1,4}")
"""Every text form of every canary matches this (checked when a scan starts)."""


@dataclass(frozen=True)
class Published:
    topic: str
    value: bytes


@dataclass
class Canaries:
    """Every planted value: its text forms, and which signal field carries it."""

    forms: dict[str, set[str]] = field(default_factory=dict)
    """canary id -> the strings that must not appear (raw as sent, canonical)."""
    where: dict[str, tuple[str, str]] = field(default_factory=dict)
    """canary id -> (signal id, field path)."""

    def plant(self, kind: str, index: int) -> str:
        """A fresh canary of ``kind`` as a partner would write it; remembered with its forms."""
        if kind == "ean":
            first = f"87169977{index:09d}"
            raw = first + ean_check_digit(first)
        elif kind == "address":
            raw = f"9{index // 1000 % 1000:03d} ZX {index % 1000 + 1}"
        else:  # bag: municipality 0999 (none has it), object type 01 (verblijfsobject)
            raw = f"099901{index:010d}"
        canary = f"{kind}-{index}"
        self.forms[canary] = {raw, normalise(kind, raw)}
        return raw


def _topic_of(line: bytes, suppliers: frozenset[str]) -> str:
    try:
        source = orjson.loads(line).get("source")
    except (orjson.JSONDecodeError, AttributeError):
        source = None
    return signals_topic(source if source in suppliers else "liander")


def build(
    count: int, registry: SchemaRegistry, suppliers: frozenset[str], *, seed: int = 41
) -> tuple[list[Published], Canaries]:
    """About ``count`` records: demo signals (with ~1 % broken lines), edge cases, canaries."""
    traffic = generate(
        count, seed=seed, start=datetime(2026, 11, 1, tzinfo=UTC), days=20, malformed_ratio=0.01
    )
    out = [Published(_topic_of(line, suppliers), line) for line in traffic.lines()]
    canaries = Canaries()
    sign = DemoSigner()
    planted = 0
    for index, envelope in enumerate(traffic.signals[: max(20, count // 50)]):
        schema = registry.get(str(envelope["type"]))
        kinds = {p: k for p, k in schema.identifier_kinds.items() if "." not in p}
        if not kinds or set(kinds.values()) - set(CANARY_KINDS):
            continue
        data: dict[str, Any] = dict(envelope["data"])
        for path, kind in kinds.items():
            data[path] = canaries.plant(kind, planted)
            canaries.where[f"{kind}-{planted}"] = (f"canary-{index}", path)
            planted += 1
        body = {k: v for k, v in envelope.items() if k != "signature"}
        signed = sign(dict(body, id=f"canary-{index}", data=data))
        out.append(Published(signals_topic(str(envelope["source"])), orjson.dumps(signed)))
    out.extend(edge_cases(traffic.signals, sign))
    return out, canaries


def edge_cases(signals: list[dict[str, Any]], sign: DemoSigner) -> list[Published]:
    """Inputs a partner's broken system could send; each must be dead-lettered with a reason,
    or (for duplicates) decided once."""
    good = next(s for s in signals if s["type"] == "energy.consumption_anomaly.v1")
    topic = signals_topic(str(good["source"]))
    body = {k: v for k, v in good.items() if k != "signature"}
    # an integer beyond the double range in a number field: once a poison pill (tests/fuzz/corpus)
    marked = dict(body, id="edge-huge", data=dict(body["data"], kwh_observed=4242424242))
    huge = orjson.dumps(marked).replace(b"4242424242", b"1" + b"0" * 400)
    return [
        Published(topic, b""),
        Published(topic, b"\x00\xff\xfe garbage"),
        Published(topic, b"[]"),
        Published(topic, b"{" * 2000),
        Published(topic, orjson.dumps(body | {"id": "edge-unsigned"})),
        Published(
            topic,
            orjson.dumps(sign(body | {"id": "edge-tampered"}) | {"time": "2026-11-02T00:00:00Z"}),
        ),
        Published(signals_topic("pwn"), orjson.dumps(sign(body | {"id": "edge-other-topic"}))),
        Published(
            topic, orjson.dumps(sign(body | {"id": "edge-type", "type": "energy.teleport.v1"}))
        ),
        Published(topic, huge),
        Published(topic, orjson.dumps(body | {"id": "edge-big", "pad": "x" * 300_000})),
        # the same signal three times: one decision per recipient, however often it arrives
        *[Published(topic, orjson.dumps(sign(body | {"id": "edge-repeated"})))] * 3,
    ]
