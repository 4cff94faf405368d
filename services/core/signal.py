"""A validated signal: envelope checked, schema validated, identifiers canonical.

This is the only way raw partner input becomes something the policy will look at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.core.envelope import Envelope, decode, envelope_from_mapping
from services.core.errors import SignalRejected
from services.core.schema_registry import SchemaRegistry, SignalSchema


@dataclass(frozen=True, slots=True)
class Signal:
    """One accepted signal. ``data`` holds canonical identifier values; never log it."""

    id: str
    source: str
    type: str
    time: datetime
    data: dict[str, Any] = field(repr=False)
    identifiers: dict[str, str] = field(repr=False)
    """Canonical value of every identifier field present, by dotted path."""
    schema: SignalSchema = field(repr=False)
    envelope: Envelope = field(repr=False)
    sent: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    """The envelope exactly as decoded from the partner's bytes (what its signature covers),
    when the signal was accepted from bytes; read-only."""

    def leaf_paths(self) -> tuple[str, ...]:
        """Dotted paths of every value present in ``data`` (objects are descended into)."""
        return tuple(_leaves(self.data, ""))


def _leaves(value: dict[str, Any], prefix: str) -> list[str]:
    paths: list[str] = []
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            paths.extend(_leaves(item, f"{path}."))
        else:
            paths.append(path)
    return paths


def accept(
    envelope: Envelope,
    registry: SchemaRegistry,
    *,
    expected_source: str | None = None,
    sent: Mapping[str, Any] | None = None,
) -> Signal:
    """Check an envelope against the registry (and the topic's partner, when known)."""
    if expected_source is not None and envelope.source != expected_source:
        raise SignalRejected(
            "wrong_source",
            f"source {envelope.source!r} does not match the partner of the topic "
            f"({expected_source!r}); a partner may only publish its own signals",
            signal_id=envelope.id,
        )
    schema = registry.get(envelope.type, signal_id=envelope.id)
    if envelope.dataschema is not None and envelope.dataschema != schema.uri:
        raise SignalRejected(
            "wrong_dataschema",
            f"dataschema does not match type {envelope.type} (expected {schema.uri} or nothing)",
            signal_id=envelope.id,
        )
    data, identifiers = schema.validate(envelope.data, signal_id=envelope.id)
    return Signal(
        id=envelope.id,
        source=envelope.source,
        type=envelope.type,
        time=envelope.time,
        data=data,
        identifiers=identifiers,
        schema=schema,
        envelope=envelope,
        sent=sent,
    )


def accept_bytes(
    raw: bytes | str, registry: SchemaRegistry, *, expected_source: str | None = None
) -> Signal:
    """Parse and accept one JSON envelope; raises :class:`SignalRejected` with a reason."""
    sent = decode(raw)
    envelope = envelope_from_mapping(sent)
    return accept(envelope, registry, expected_source=expected_source, sent=sent)
