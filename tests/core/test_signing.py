"""Signed signals through the pure pipeline: canonical form, signing, every rejection reason.

All keys here are TEST KEYS derived from fixed seeds in this file.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.core import signing
from services.core.covenant.keyring import Keyring
from services.core.errors import SignalRejected
from services.core.pipeline import Outcome, process
from services.core.records import rejection_record
from services.core.signing import (
    canonical_envelope,
    canonical_json,
    es_number,
    parse_signature,
    public_key_base64,
    sign,
)
from tests.core.builders import (
    ADDRESS,
    ANOMALY_RULE,
    EAN,
    REGISTRY,
    anomaly,
    checked,
    covenant_text,
    load_texts,
    policy,
    shipped_policy,
)


def fixed_key(name: str) -> Ed25519PrivateKey:
    """A TEST KEY derived from a fixed seed: never a secret."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"test:{name}".encode()).digest())


LIANDER_OLD, LIANDER_NEW, PWN, MALLORY = (
    fixed_key(n) for n in ("liander-old", "liander-new", "pwn", "mallory")
)
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def keys_yaml(*entries: tuple[str, Ed25519PrivateKey, str | None, str | None]) -> str:
    items = []
    for key_id, key, start, end in entries:
        window = (f", valid_from: {start}" if start else "") + (
            f", valid_until: {end}" if end else ""
        )
        items.append(f'{{id: {key_id}, ed25519: "{public_key_base64(key.public_key())}"{window}}}')
    return f"public_keys: [{', '.join(items)}]"


def signed_covenant(*, liander: str | None = None, pwn: str | None = None, **fields: str) -> str:
    text = covenant_text(ANOMALY_RULE, **{"signatures": "required", **fields})
    liander = liander or keys_yaml(("liander-1", LIANDER_OLD, None, None))
    pwn = pwn or keys_yaml(("pwn-1", PWN, None, None))
    text = text.replace(
        "liander: {name: Liander, kind: energy, roles: [supplier]}",
        f"liander: {{name: Liander, kind: energy, roles: [supplier], {liander}}}",
    )
    return text.replace(
        "pwn: {name: PWN, kind: water, roles: [supplier]}",
        f"pwn: {{name: PWN, kind: water, roles: [supplier], {pwn}}}",
    )


def run(envelope: dict[str, Any], cov: str, now: datetime = NOW, **kw: Any) -> Outcome:
    return process(orjson.dumps(envelope), REGISTRY, policy(cov), now, **kw)


def rejected(outcome: Outcome, code: str) -> str:
    assert outcome.rejection is not None, "expected a rejection"
    assert outcome.rejection.code == code, outcome.rejection.reason
    reason = outcome.rejection.reason
    record = rejection_record(outcome.rejection, actor="test")
    for identifier in (EAN, ADDRESS, "1811 ab 12-a"):  # never an identifier in a reason
        assert identifier not in reason and identifier not in orjson.dumps(record).decode()
    assert "Fix" in reason
    assert record["result"] == "rejected" and record["reason"].startswith(code + ": ")
    return reason


def delivered(outcome: Outcome) -> None:
    assert outcome.rejection is None, outcome.rejection
    assert [d.result for d in outcome.decisions] == ["delivered"]


# --- canonical form ----------------------------------------------------------------------


def test_canonical_form_matches_the_rfc_8785_example():
    raw = (
        b'{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        b' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        b' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(orjson.loads(raw)) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (10.0, "10"),
        (0.5, "0.5"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e20, "150000000000000000000"),
        (1e21, "1e+21"),
        (123.456, "123.456"),
        (0.1 + 0.2, "0.30000000000000004"),
        (5e-324, "5e-324"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
    ],
)
def test_numbers_are_written_in_ecmascript_form(value: float, text: str):
    assert es_number(value) == text


def test_canonical_envelope_ignores_order_whitespace_and_the_signature():
    envelope = anomaly()
    shuffled = orjson.loads(orjson.dumps(dict(reversed(list(envelope.items())))))
    assert canonical_envelope(envelope) == canonical_envelope(shuffled)
    assert canonical_envelope(envelope) == canonical_envelope(dict(envelope, signature="x"))
    assert b" " not in canonical_envelope({"a": 1, "b": [1, 2]})
    assert canonical_envelope(envelope) != canonical_envelope(dict(envelope, id="other"))


def test_sign_names_the_key_and_leaves_the_input_alone():
    envelope = anomaly()
    signed = sign(envelope, LIANDER_OLD, "liander-1")
    assert "signature" not in envelope
    key_id, signature = parse_signature(signed["signature"])
    assert key_id == "liander-1" and len(signature) == 64
    LIANDER_OLD.public_key().verify(signature, canonical_envelope(envelope))
    assert sign(signed, LIANDER_OLD, "liander-1") == signed  # deterministic, old one replaced
    with pytest.raises(ValueError, match="slug"):
        sign(envelope, LIANDER_OLD, "Liander:1")


# --- the router's verification, through the pure pipeline -----------------------------


def test_valid_signature_is_delivered():
    delivered(run(sign(anomaly(), LIANDER_OLD, "liander-1"), signed_covenant()))


def test_unsigned_is_rejected_naming_the_covenant_and_the_fix():
    reason = rejected(run(anomaly(), signed_covenant()), "unsigned")
    assert "'liander'" in reason and "schakel keys partner liander" in reason


def test_forged_signature_is_rejected():
    forged = sign(anomaly(), MALLORY, "liander-1")  # right key id, wrong private key
    reason = rejected(run(forged, signed_covenant()), "bad_signature")
    assert "'liander-1'" in reason


def test_tampered_payload_is_rejected():
    signed = sign(anomaly(score=0.5), LIANDER_OLD, "liander-1")
    tampered = dict(signed, data=dict(signed["data"], score=0.95))
    rejected(run(tampered, signed_covenant()), "bad_signature")
    moved = dict(signed, time="2026-11-02T10:00:00Z")  # envelope attributes are signed too
    rejected(run(moved, signed_covenant()), "bad_signature")


def test_signature_over_other_spelling_of_the_same_values_still_verifies():
    signed = sign(anomaly(), LIANDER_OLD, "liander-1")
    spaced = orjson.dumps(signed, option=orjson.OPT_INDENT_2)  # whitespace is not signed
    outcome = process(spaced, REGISTRY, policy(signed_covenant()), NOW)
    delivered(outcome)


def test_re_signed_by_another_partner_is_rejected_as_a_foreign_key():
    resigned = sign(anomaly(), PWN, "pwn-1")
    reason = rejected(run(resigned, signed_covenant()), "foreign_key")
    assert "'pwn'" in reason and "'liander'" in reason


def test_a_key_id_registered_for_two_partners_is_refused_with_file_and_line():
    cov = signed_covenant(pwn=keys_yaml(("liander-1", PWN, None, None)))
    result = checked(cov)
    [problem] = [p for p in result.errors if "already the id of a key of 'liander'" in p.message]
    assert problem.file == "covenant-0.yaml"
    assert cov.splitlines()[problem.line - 1].lstrip().startswith("pwn:")
    assert "'pwn'" in problem.message and "covenant-0.yaml:" in problem.message
    assert not result.ok


class Verifications:
    """Counts Ed25519 verifications made by the signature check."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = signing.verifies

        def counting(public_key: Any, signature: bytes, message: bytes) -> bool:
            self.count += 1
            return real(public_key, signature, message)

        monkeypatch.setattr(signing, "verifies", counting)


def unchecked_keyring(*texts: str) -> Keyring:
    """The keyring of covenant texts that never went through ``covenant check``."""
    return Keyring(item.covenant for item in load_texts(*texts).covenants)


def test_a_forged_signature_costs_at_most_one_verification(monkeypatch: pytest.MonkeyPatch):
    # a set the check would refuse: pwn and two more covenants' parties reuse liander's key id
    shared = keys_yaml(("liander-1", PWN, None, None))
    texts = [signed_covenant(pwn=shared)] + [
        signed_covenant(
            covenant=f"other-{n}", pwn=keys_yaml(("liander-1", fixed_key(n), None, None))
        )
        for n in ("a", "b", "c")
    ]
    keyring = unchecked_keyring(*texts)
    verifications = Verifications(monkeypatch)
    day = NOW.date()
    for forged, code in [
        (sign(anomaly(), MALLORY, "liander-1"), "bad_signature"),  # the source's own key id
        (sign(anomaly(), MALLORY, "pwn-1"), "unknown_key"),  # another partner's key id
        (sign(anomaly(), MALLORY, "nobody-1"), "unknown_key"),  # nobody's key id
    ]:
        verifications.count = 0
        with pytest.raises(SignalRejected) as info:
            signing.verify_envelope(forged, keyring, day, signal_id="s")
        assert info.value.code == code
        assert verifications.count <= 1, (code, verifications.count)


def test_a_forged_signal_costs_one_verification_on_the_shipped_covenants(
    monkeypatch: pytest.MonkeyPatch,
):
    shipped = shipped_policy()
    verifications = Verifications(monkeypatch)
    for key_id in ("demo-liander", "demo-pwn", "demo-schakel"):
        verifications.count = 0
        forged = sign(anomaly(), MALLORY, key_id)
        outcome = process(orjson.dumps(forged), REGISTRY, shipped, NOW)
        assert outcome.rejection is not None
        assert outcome.rejection.code in {"bad_signature", "unknown_key"}
        assert verifications.count == 1


def test_another_partners_key_is_found_with_one_verification(monkeypatch: pytest.MonkeyPatch):
    verifications = Verifications(monkeypatch)
    rejected(run(sign(anomaly(), PWN, "pwn-1"), signed_covenant()), "foreign_key")
    assert verifications.count == 1


def test_unknown_key_id_is_rejected():
    reason = rejected(run(sign(anomaly(), MALLORY, "mallory-1"), signed_covenant()), "unknown_key")
    assert "'mallory-1'" in reason


@pytest.mark.parametrize(
    "text", ["liander-1", "ed25519:liander-1:abc", "rsa:liander-1:" + "A" * 86]
)
def test_malformed_signature_is_rejected(text: str):
    rejected(run(dict(anomaly(), signature=text), signed_covenant()), "malformed_signature")


def test_expired_key_is_rejected():
    cov = signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, None, "2026-11-21")))
    reason = rejected(run(sign(anomaly(), LIANDER_OLD, "liander-1"), cov), "key_expired")
    assert "2026-11-21" in reason


def test_key_before_its_window_is_rejected():
    cov = signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, "2026-11-23", None)))
    rejected(run(sign(anomaly(), LIANDER_OLD, "liander-1"), cov), "key_not_yet_valid")


# --- rotation with an overlap ------------------------------------------------------------

ROTATION = keys_yaml(
    ("liander-2025", LIANDER_OLD, None, "2026-12-31"),
    ("liander-2026", LIANDER_NEW, "2026-12-01", None),
)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "old", "new"),
    [
        (date(2026, 11, 30), None, "key_not_yet_valid"),
        (date(2026, 12, 1), None, None),  # the overlap: both accepted
        (date(2026, 12, 31), None, None),
        (date(2027, 1, 1), "key_expired", None),
    ],
)
def test_rotation_accepts_both_keys_only_inside_the_overlap(
    day: date, old: str | None, new: str | None
):
    cov = signed_covenant(liander=ROTATION)
    for key, key_id, expected in (
        (LIANDER_OLD, "liander-2025", old),
        (LIANDER_NEW, "liander-2026", new),
    ):
        outcome = run(sign(anomaly(), key, key_id), cov, at(day))
        if expected is None:
            delivered(outcome)
        else:
            rejected(outcome, expected)


def test_key_windows_follow_the_dutch_calendar_day():
    cov = signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, None, "2026-12-31")))
    envelope = sign(anomaly(), LIANDER_OLD, "liander-1")
    late_evening = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January there
    rejected(run(envelope, cov, late_evening), "key_expired")
    delivered(run(envelope, cov, datetime(2026, 12, 31, 22, 30, tzinfo=UTC)))  # 23:30 there


def test_replay_at_signal_time_checks_the_key_on_the_signals_own_day():
    cov = signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, None, "2026-11-15")))
    envelope = sign(anomaly(), LIANDER_OLD, "liander-1")  # signal time 2026-11-01
    rejected(run(envelope, cov), "key_expired")
    delivered(run(envelope, cov, at_signal_time=True))


# --- who must sign ---------------------------------------------------------------------


def test_optional_signatures_let_a_party_without_keys_send_unsigned():
    cov = covenant_text(ANOMALY_RULE, signatures="optional")
    delivered(run(anomaly(), cov))
    rejected(run(sign(anomaly(), MALLORY, "m-1"), cov), "unknown_key")  # a signature is checked


def test_optional_signatures_still_bind_a_party_with_keys():
    cov = signed_covenant(signatures="optional")
    reason = rejected(run(anomaly(), cov), "unsigned")
    assert "registered keys" in reason
    delivered(run(sign(anomaly(), LIANDER_OLD, "liander-1"), cov))


def test_required_signatures_without_a_registered_key_reject_unsigned():
    cov = covenant_text(ANOMALY_RULE, signatures="required")
    reason = rejected(run(anomaly(), cov), "unsigned")
    assert "test-covenant@1 requires signatures" in reason


def test_a_partner_no_covenant_names_is_withheld_not_verified():
    outcome = run(anomaly(source="vitens"), signed_covenant())
    assert outcome.rejection is None
    [decision] = outcome.decisions
    assert decision.result == "withheld" and decision.rule is None


def test_keys_of_a_covenant_out_of_force_are_not_used():
    cov = signed_covenant(valid="{from: 2025-01-01, until: 2026-06-30}")
    other = covenant_text(  # its successor registers no keys and makes signing optional
        ANOMALY_RULE, version='"2"', valid="{from: 2026-07-01, until: 2027-12-31}"
    )
    p = policy(cov, other)
    envelope = sign(anomaly(), LIANDER_OLD, "liander-1")
    reason = rejected(process(orjson.dumps(envelope), REGISTRY, p, NOW), "covenant_ended")
    assert "test-covenant@1, which expired on 2026-06-30" in reason
    assert process(orjson.dumps(anomaly()), REGISTRY, p, NOW).rejection is None
