"""Input that means two things, or carries a time nobody should accept: one builder per attack,
shared by the tests of every entrance (router, replay, coverage, stacking, gateway, publish).

Every attack is a Liander signal signed with Liander's demo TEST key under the shipped
covenants, so the signature verifies wherever the attack is not caught; NOW is the decision
time the shipped covenants are in force on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.demo.keys import DemoSigner
from tests.core.builders import anomaly

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SIGN = DemoSigner()


def signed(envelope: dict[str, Any]) -> dict[str, Any]:
    return SIGN(envelope)


def good(signal_id: str = "liander-good") -> bytes:
    return orjson.dumps(signed(anomaly(signal_id=signal_id)))


def _splice(signal_id: str, before: bytes) -> bytes:
    """A signed envelope with ``before`` (members and a comma) placed before its own."""
    body = orjson.dumps(signed(anomaly(signal_id=signal_id)))
    return b"{" + before + body[1:]


def _time(signal_id: str, time: datetime) -> bytes:
    envelope = anomaly(signal_id=signal_id)
    envelope["time"] = time.isoformat().replace("+00:00", "Z")
    return orjson.dumps(signed(envelope))


def _number(signal_id: str, value: int) -> bytes:
    """A signed envelope whose ``kwh_observed`` is the integer ``value``, written exactly (as a
    partner's JSON library writes it) and signed as RFC 8785 writes it (as a double)."""
    envelope = signed(anomaly(signal_id=signal_id, kwh_observed=value))
    return json.dumps(envelope, separators=(",", ":")).encode()


def _literal(signal_id: str, literal: bytes) -> bytes:
    """An envelope whose ``kwh_observed`` is written as ``literal``, which no double holds
    (so no signature can cover it)."""
    body = orjson.dumps(signed(anomaly(signal_id=signal_id, kwh_observed=7777.25)))
    assert body.count(b"7777.25") == 1
    return body.replace(b"7777.25", literal)


def _respelt(signal_id: str, literal: bytes) -> bytes:
    """An envelope signed with ``kwh_observed`` 9007199254740992.0, then respelt as ``literal``,
    which reads as the same double: the signature still verifies, yet a decimal reader sees
    another number."""
    body = orjson.dumps(signed(anomaly(signal_id=signal_id, kwh_observed=9007199254740992.0)))
    assert body.count(b"9007199254740992.0") == 1
    return body.replace(b"9007199254740992.0", literal)


@dataclass(frozen=True)
class Attack:
    raw: bytes
    code: str
    signal_id: str | None
    """The id the rejection must carry (None: the input names no single id)."""


ATTACKS: dict[str, Attack] = {
    # the attack: a forged source and data before the signed envelope's own members
    "duplicate_before_signed": Attack(
        _splice("dup-1", b'"source":"pwn","data":{"forged":true},'), "duplicate_member", "dup-1"
    ),
    "duplicate_nested": Attack(
        orjson.dumps(signed(anomaly(signal_id="dup-2"))).replace(
            b'"period":{', b'"period":{"start":"2026-01-01",'
        ),
        "duplicate_member",
        "dup-2",
    ),
    "duplicate_id": Attack(_splice("dup-3", b'"id":"someone-else",'), "duplicate_member", None),
    # the ':' count of a rewrite cannot see a dropped member when a kept string hides a ':'
    "duplicate_behind_an_escaped_colon": Attack(
        orjson.dumps(signed(anomaly(signal_id="dup-4"))).replace(
            b'"data":{', b'"data":{"pattern":"other","pattern":"\\u003a",'
        ),
        "duplicate_member",
        "dup-4",
    ),
    "integer_beyond_2_53": Attack(
        _number("int-1", 9007199254740993), "integer_out_of_range", "int-1"
    ),
    "negative_integer_beyond_2_53": Attack(
        _number("int-2", -9007199254740992), "integer_out_of_range", "int-2"
    ),
    "integer_beyond_2_64": Attack(
        _number("int-3", 18446744073709551617), "integer_out_of_range", "int-3"
    ),
    "number_beyond_double": Attack(_literal("num-1", b"1e400"), "number_out_of_range", "num-1"),
    # one signature, two numbers: the literal reads as the double that was signed
    "float_beyond_double_precision": Attack(
        _respelt("num-2", b"9007199254740993.0"), "number_inexact", "num-2"
    ),
    "exponent_beyond_double_precision": Attack(
        _respelt("num-3", b"9007199254740993e0"), "number_inexact", "num-3"
    ),
    "lone_surrogate": Attack(
        orjson.dumps(signed(anomaly(signal_id="uni-1"))).replace(
            b'"address":"', b'"address":"\\ud800'
        ),
        "invalid_unicode",
        "uni-1",
    ),
    "time_in_future": Attack(
        _time("time-1", NOW + timedelta(minutes=6)), "time_in_future", "time-1"
    ),
    "time_too_old": Attack(_time("time-2", NOW - timedelta(days=181)), "time_too_old", "time-2"),
}
"""Each attack, the code it is refused with at every entrance, and the id the refusal names."""

INVALID_UTF8 = Attack(
    orjson.dumps(signed(anomaly(signal_id="uni-2"))).replace(b"GM0361", b"GM\xff361"),
    "invalid_unicode",
    None,
)
"""Not text at all: refused whole (a gateway body with it is no JSON; no id is read from it)."""

PLAUSIBLE_TIMES = {
    "clock_skew": _time("time-3", NOW + timedelta(minutes=4)),
    "within_retention": _time("time-4", NOW - timedelta(days=179)),
}
"""Times just inside the window: accepted."""
