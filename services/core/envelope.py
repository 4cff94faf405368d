"""The signal envelope: CloudEvents 1.0 attributes plus a detached signature (and batch proof).

A partner publishes one envelope per signal. Its bytes are read as strict I-JSON
(:mod:`services.core.strict_json`: no member twice, no inexact integer, valid Unicode), then
the envelope is validated strictly: unknown attributes, a wrong ``specversion``, a missing
``time`` or a malformed id are rejected with a :class:`~services.core.errors.SignalRejected`
whose message names the attribute and the rule broken, never the offending value (the value
may be an identifier).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from services.core import strict_json
from services.core.errors import SignalRejected

PARTNER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""Partner ids are lower-case slugs: they appear in topic names (``signals.<partner>``)."""

SIGNAL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
SIGNAL_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\.v[0-9]+$"

_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


def _rfc3339(value: object) -> object:
    """Only RFC 3339 text is a CloudEvents time; epoch numbers and bare years are ambiguous."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 timestamp with offset, e.g. 2026-11-22T10:00:00Z")
    return value


MAX_ENVELOPE_BYTES = 256 * 1024
"""A signal is a small derived fact, never a bulk upload; larger inputs are refused unparsed."""


class Envelope(BaseModel):
    """One signal as published by a partner (CloudEvents 1.0 structured JSON mode)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(pattern=SIGNAL_ID_PATTERN)]
    source: Annotated[str, Field(pattern=PARTNER_ID_PATTERN)]
    type: Annotated[str, Field(pattern=SIGNAL_TYPE_PATTERN, max_length=128)]
    time: Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
    """RFC 3339 with an offset; numbers (epoch seconds) are refused as ambiguous."""
    dataschema: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    datacontenttype: Literal["application/json"] | None = None
    subject: None = None
    """CloudEvents ``subject`` is refused: it would carry an identifier outside the schema."""
    traceparent: (
        Annotated[str, Field(pattern=r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")] | None
    ) = None
    signature: Annotated[str, Field(min_length=1, max_length=512)] | None = None
    """Detached Ed25519 signature over the canonical envelope without the signature
    attributes, or over the root of a signed batch (:mod:`services.core.signing`)."""
    batch: Annotated[str, Field(min_length=1, max_length=1024)] | None = None
    """The signal's place in a signed batch: index, size, root and inclusion path
    (:mod:`services.core.batch_signing`); only with a batch signature."""
    data: dict[str, Any]


def parse_envelope(raw: bytes | str) -> Envelope:
    """Parse and strictly validate one JSON envelope, or raise :class:`SignalRejected`."""
    return envelope_from_mapping(decode(raw))


def decode(raw: bytes | str) -> Any:
    """The JSON value of one envelope as sent, read strictly as I-JSON
    (:mod:`services.core.strict_json`: no member twice, no inexact integer, valid Unicode)."""
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise SignalRejected(
            "too_large",
            f"envelope is {len(raw)} bytes; the limit is {MAX_ENVELOPE_BYTES}",
            signal_id=peek_signal_id(raw[:4096]),
        )
    try:
        return strict_json.loads(raw)
    except SignalRejected as exc:
        exc.signal_id = peek_signal_id(raw)
        raise


def envelope_from_mapping(value: object) -> Envelope:
    """Validate an already-decoded JSON object as an envelope."""
    try:
        return Envelope.model_validate(value)
    except ValidationError as exc:
        sid = value.get("id") if isinstance(value, dict) else None
        raise SignalRejected(
            "invalid_envelope",
            describe_validation_error(exc),
            signal_id=sid if isinstance(sid, str) and _SIGNAL_ID.match(sid) else None,
        ) from None


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """A message listing each failing attribute and rule, without echoing any input value."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "envelope"
        kind = err["type"]
        if kind == "extra_forbidden":
            parts.append(
                f"{where}: unknown attribute (remove it; CloudEvents extensions are not accepted)"
            )
        elif kind == "missing":
            parts.append(f"{where}: required attribute is missing")
        elif kind == "json_invalid":
            parts.append(f"not valid JSON ({err['msg'].removeprefix('Invalid JSON: ')})")
        elif kind == "string_pattern_mismatch":
            parts.append(f"{where}: does not match the required pattern {err['ctx']['pattern']}")
        else:
            parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def peek_signal_id(raw: bytes | str) -> str | None:
    """Best-effort signal id from bytes that failed validation, for dead-letter records."""
    return peek(raw)[0]


def peek(raw: bytes | str) -> tuple[str | None, str | None]:
    """Best-effort (signal id, source) of input that failed validation.

    Only values that look like well-formed ids are returned, so nothing arbitrary (possibly an
    identifier) travels from bad input into a dead-letter or audit record; an attribute sent
    twice has no one value and is not returned. The reading is lenient (any integer, lone
    surrogates) so that the id of input refused for such things is still found.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        value = _PEEK.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        return None, None
    if not isinstance(value, _Members):
        return None, None
    return _once(value, "id", _SIGNAL_ID), _once(value, "source", _PARTNER_ID)


class _Members(list[tuple[str, Any]]):
    """The members of a JSON object, in order, repeats included."""


def _once(members: _Members, name: str, pattern: re.Pattern[str]) -> str | None:
    found = [v for k, v in members if k == name]
    if len(found) != 1 or not isinstance(found[0], str) or not pattern.match(found[0]):
        return None
    return found[0]


_PEEK = json.JSONDecoder(object_pairs_hook=_Members, parse_int=len, parse_float=len)


_SIGNAL_ID = re.compile(SIGNAL_ID_PATTERN)
_PARTNER_ID = re.compile(PARTNER_ID_PATTERN)


def signal_time(envelope: Envelope) -> datetime:
    """The event time of a signal (always timezone-aware)."""
    return envelope.time
