"""The envelope parser: strict CloudEvents, specific errors, never echoing values."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core import strict_json
from services.core.envelope import MAX_ENVELOPE_BYTES, parse_envelope, peek
from services.core.errors import SignalRejected

EAN = "871685900000000011"


def envelope(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "specversion": "1.0",
        "id": "liander-000001",
        "source": "liander",
        "type": "energy.consumption_anomaly.v1",
        "time": "2026-11-01T10:00:00Z",
        "data": {"ean": EAN},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def raw(**changes: object) -> bytes:
    return orjson.dumps(envelope(**changes))


def rejection(data: bytes | str) -> SignalRejected:
    with pytest.raises(SignalRejected) as info:
        parse_envelope(data)
    return info.value


def test_valid_envelope_parses_with_aware_time():
    parsed = parse_envelope(raw(time="2026-11-01T11:00:00+01:00"))
    assert parsed.id == "liander-000001"
    assert parsed.time.utcoffset() is not None
    assert parsed.data == {"ean": EAN}


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"id": ""}, "id"),
        ({"id": "has space"}, "id"),
        ({"source": "Liander"}, "source"),
        ({"type": "energy"}, "type"),
        ({"time": "2026-11-01T10:00:00"}, "time"),
        ({"time": 1762000000}, "time"),
        ({"time": "2026"}, "time"),
        ({"data": [1, 2]}, "data"),
        ({"subject": "1811AB 12A"}, "subject"),
        ({"extension": "x"}, "unknown attribute"),
        ({"datacontenttype": "text/plain"}, "datacontenttype"),
    ],
)
def test_each_bad_attribute_is_named(changes, fragment):
    error = rejection(raw(**changes))
    assert error.code == "invalid_envelope"
    assert fragment in error.message
    assert error.signal_id in (None, "liander-000001")


def test_missing_attribute_is_named():
    body = envelope()
    del body["time"]
    error = rejection(orjson.dumps(body))
    assert "time: required attribute is missing" in error.message


def test_unparseable_bytes_have_their_own_code():
    error = rejection(b'{"specversion": "1.0", "id": ')
    assert error.code == "unparseable"
    assert error.signal_id is None


def test_oversized_input_is_refused_before_parsing():
    error = rejection(b" " * (MAX_ENVELOPE_BYTES + 1))
    assert error.code == "too_large"


def test_messages_never_echo_identifier_values():
    error = rejection(raw(source=EAN + "X", subject=EAN, time=EAN))
    assert EAN not in str(error)


def test_peek_returns_only_well_formed_ids():
    assert peek(raw()) == ("liander-000001", "liander")
    assert peek(raw(id="1811 AB 12", source="Not A Slug")) == (None, None)
    assert peek(b"not json") == (None, None)
    assert peek(b"[1]") == (None, None)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_rejection_or_an_envelope(data):
    error: SignalRejected | None = None
    try:
        parse_envelope(data)
    except SignalRejected as exc:
        error = exc
    if error is not None:
        assert error.code in {"invalid_envelope", "too_large"} | strict_json.CODES
        assert error.message
