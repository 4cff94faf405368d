"""The envelope parser and the whole accept step take any bytes: a signal or a named rejection.

Nothing a partner sends may raise anything but :class:`SignalRejected`, and no rejection
message may echo a value from the input (it may be an identifier).
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.core import strict_json
from services.core.envelope import parse_envelope, peek
from services.core.errors import SignalRejected
from services.core.pipeline import process
from services.core.signal import accept_bytes
from tests.core.builders import REGISTRY
from tests.fuzz.strategies import attempt, dumps, fuzz_settings, mutated_envelopes, raw_inputs
from tests.router.helpers import policy_source

ENVELOPE_CODES = {"invalid_envelope", "too_large"} | strict_json.CODES
ACCEPT_CODES = ENVELOPE_CODES | {
    "unknown_type",
    "wrong_source",
    "wrong_dataschema",
    "schema_violation",
    "invalid_identifier",
}
SIGNATURE_CODES = {
    "unsigned",
    "malformed_signature",
    "unknown_key",
    "key_not_yet_valid",
    "key_expired",
    "bad_signature",
    "foreign_key",
    "covenant_ended",
    "time_in_future",
    "time_too_old",
}
CANARY = "CANARY-7391-ZZQX"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
POLICY = policy_source().current


@fuzz_settings(250)
@given(raw_inputs())
def test_parser_gives_an_envelope_or_a_named_rejection(raw):
    envelope, error = attempt(lambda: parse_envelope(raw), SignalRejected)
    if isinstance(error, SignalRejected):
        assert error.code in ENVELOPE_CODES
        assert error.message.strip()
    else:
        assert envelope is not None and envelope.time.utcoffset() is not None


@fuzz_settings(250)
@given(raw_inputs())
def test_accept_gives_a_signal_or_a_named_rejection(raw):
    accepted, error = attempt(lambda: accept_bytes(raw, REGISTRY), SignalRejected)
    if isinstance(error, SignalRejected):
        assert error.code in ACCEPT_CODES, error.code
        assert error.message.strip()
    else:
        assert accepted is not None and accepted.type in REGISTRY
        assert set(accepted.identifiers) <= set(accepted.schema.identifier_kinds)


@fuzz_settings(300)
@given(mutated_envelopes(), st.sampled_from(["envelope", "data"]), st.data())
def test_rejections_never_echo_a_planted_value(envelope, where, data):
    target = (
        envelope
        if where == "envelope" or not isinstance(envelope.get("data"), dict)
        else (envelope["data"])
    )
    key = data.draw(st.sampled_from(sorted(k for k in target if k != "id") or ["extra"]))
    target[key] = CANARY if data.draw(st.booleans()) else {"nested": CANARY}
    raw = dumps(envelope)
    outcome = process(raw, POLICY.registry, POLICY.policy, NOW)
    if outcome.rejection is not None:
        rejection = outcome.rejection
        assert rejection.code in ACCEPT_CODES | SIGNATURE_CODES
        assert rejection.reason.strip()
        assert CANARY not in rejection.reason
        assert CANARY not in (rejection.signal_id or "")
        assert CANARY not in (rejection.source or "")


@fuzz_settings(250)
@given(raw_inputs())
def test_peek_only_returns_well_formed_ids(raw):
    signal_id, source = peek(raw)
    assert signal_id is None or (len(signal_id) <= 128 and " " not in signal_id)
    assert source is None or (source == source.lower() and len(source) <= 63)
