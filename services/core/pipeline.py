"""One signal in, its outcome out: the pure step shared by the stream router and replay.

Order: the bytes are read as strict I-JSON (:mod:`services.core.strict_json`), the envelope
and its data are validated (:mod:`services.core.signal`), then the signature is checked
against the source partner's registered keys (:mod:`services.core.signing`) and the signal's
time for plausibility (:mod:`services.core.time_window`), then the policy decides. Each
failure is a rejection.

Keeping this in one place is what makes ``schakel replay`` show exactly what the running hub
would decide.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime

from services.core.covenant.keyring import Keyring
from services.core.decision import Decision, Rejection, rejection_id
from services.core.envelope import decode, peek
from services.core.errors import SignalRejected
from services.core.policy import LOCAL_TIME, Policy
from services.core.schema_registry import SchemaRegistry
from services.core.signal import Signal, accept_bytes
from services.core.signing import verify_envelope


@dataclass(frozen=True, slots=True)
class Outcome:
    """Either an accepted signal with its decisions, or a rejection."""

    signal: Signal | None
    decisions: list[Decision] = field(default_factory=list)
    rejection: Rejection | None = None


def process(
    raw: bytes | str,
    registry: SchemaRegistry,
    policy: Policy,
    now: datetime,
    *,
    expected_source: str | None = None,
    at_signal_time: bool = False,
) -> Outcome:
    """Validate one raw envelope and decide it; bad input becomes a rejection, never an error.

    ``at_signal_time`` decides as of the signal's own time (replaying history against the
    covenant versions in force then) instead of ``now``.
    """
    try:
        signal = accept_bytes(raw, registry, expected_source=expected_source)
        moment = signal.time if at_signal_time else now
        check_signature(raw, signal, policy, moment)
        check_time(signal, policy, moment)
    except SignalRejected as exc:
        return Outcome(signal=None, rejection=reject(raw, exc, now, source=expected_source))
    return Outcome(signal=signal, decisions=policy.decide(signal, moment))


def check_signature(raw: bytes | str, signal: Signal, policy: Policy, moment: datetime) -> None:
    """Verify the signature of an accepted signal as of ``moment`` (raises SignalRejected).

    The signature covers what the partner sent, not the hub's normalised reading of it: the
    envelope as decoded from ``raw`` (kept on the signal when it was accepted from bytes).
    Keys and covenants are taken on the Dutch calendar day of ``moment``, as the policy takes
    covenant validity.
    """
    sent = signal.sent if signal.sent is not None else decode(raw)
    verify_envelope(
        sent, _keyring(policy), moment.astimezone(LOCAL_TIME).date(), signal_id=signal.id
    )


def check_time(signal: Signal, policy: Policy, moment: datetime) -> None:
    """Refuse a signal whose time is implausible as of ``moment``
    (:mod:`services.core.time_window`: ahead of the clock, or older than any rule keeps it)."""
    _keyring(policy).window.check(
        signal.source, signal.type, signal.time, moment, signal_id=signal.id
    )


def _keyring(policy: Policy) -> Keyring:
    return policy.keyring if policy.keyring is not None else Keyring(policy.covenants)


def verify_raw(raw: bytes | str, keyring: Keyring, day: date, *, signal_id: str | None) -> None:
    """Verify the signature of the envelope ``raw`` as sent, against ``keyring`` on the Dutch
    calendar day ``day`` (raises SignalRejected); what :func:`check_signature` runs, for
    callers without a compiled policy (``schakel publish``). The envelope is read strictly
    (:func:`services.core.envelope.decode`), as the router reads it."""
    verify_envelope(decode(raw), keyring, day, signal_id=signal_id)


def reject(
    raw: bytes | str, exc: SignalRejected, now: datetime, *, source: str | None
) -> Rejection:
    """The rejection record for input that failed validation."""
    peeked_id, peeked_source = peek(raw)
    signal_id = exc.signal_id or peeked_id
    source = source or peeked_source
    if signal_id is not None:
        rid = rejection_id(source or "-", signal_id)
    else:
        data = raw.encode() if isinstance(raw, str) else raw
        rid = rejection_id(source or "-", "sha256:" + hashlib.sha256(data).hexdigest())
    return Rejection(
        rejection_id=rid,
        signal_id=signal_id,
        source=source,
        code=exc.code,
        reason=exc.message,
        decided_at=now,
    )
