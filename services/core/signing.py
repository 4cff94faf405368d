"""Signed signals: the canonical form of an envelope, signing it, and checking a signature.

A partner signs every envelope it publishes with its Ed25519 key; the public half is
registered in the covenant's party list (:mod:`services.core.covenant.keyring`). The hub
verifies before anything is decided, so a delivered signal is one its source cannot deny.

**What is signed.** The canonical form of the envelope *as sent*: the JSON object of every
attribute except ``signature``, serialised per RFC 8785 (JSON Canonicalization Scheme):
object members sorted by name, no whitespace, UTF-8, strings escaped minimally (only ``"``,
``\\`` and control characters, with ``\\b \\t \\n \\f \\r`` short forms and lower-case
``\\u00xx`` otherwise), numbers in the ECMAScript form (``4.5``, ``0.002``, ``1e-7``,
``1e+30``, ``1.0`` written as ``1``). The hub canonicalises the bytes it received, not its own
normalised reading of them, so a partner's canonicaliser only has to agree on the envelope.

**The signature attribute** is ``ed25519:<key-id>:<signature>``: the key id as registered in
the covenant and the 64-byte signature in unpadded base64url (86 characters).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any, NoReturn

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.core.covenant import validity
from services.core.covenant.keyring import Keyring, PartnerKeys
from services.core.errors import SignalRejected

ALGORITHM = "ed25519"
SIGNATURE_BYTES = 64
SIGNATURE_FORMAT = "ed25519:<key-id>:<base64url signature, 86 characters>"
_SIGNATURE = re.compile(r"^ed25519:([a-z0-9][a-z0-9-]{0,62}):([A-Za-z0-9_-]{86})$")
_KEY_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EXACT_INTEGERS = 2**53
"""Beyond this an integer is not exact as an IEEE double; RFC 8785 writes it as the double."""


class SignatureFormatError(ValueError):
    """A ``signature`` attribute that is not ``ed25519:<key-id>:<base64url>``."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a decoded JSON value (dicts, lists, str, numbers, bool, None).

    orjson sorts the members and escapes strings exactly as RFC 8785 asks; numbers that are
    floats are written in the ECMAScript form first (orjson's float text differs for some).
    Members are sorted by code point, which is RFC 8785's UTF-16 order for every name except
    ones mixing characters above U+FFFF with U+E000-U+FFFF; envelope and schema field names
    are ASCII.
    """
    return orjson.dumps(_numbers(value), option=orjson.OPT_SORT_KEYS)


def canonical_envelope(envelope: Mapping[str, Any]) -> bytes:
    """The bytes a partner signs: the canonical JSON of ``envelope`` without ``signature``."""
    return canonical_json({k: v for k, v in envelope.items() if k != "signature"})


def sign(
    envelope: Mapping[str, Any], private_key: Ed25519PrivateKey, key_id: str
) -> dict[str, Any]:
    """A copy of ``envelope`` with its ``signature`` attribute set (any old one replaced)."""
    if not _KEY_ID.match(key_id):
        raise ValueError("a key id is a lower-case slug such as liander-20261122")
    signature = private_key.sign(canonical_envelope(envelope))
    return {**envelope, "signature": format_signature(key_id, signature)}


def format_signature(key_id: str, signature: bytes) -> str:
    return f"{ALGORITHM}:{key_id}:{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def parse_signature(text: str) -> tuple[str, bytes]:
    """``(key id, 64 signature bytes)`` of a signature attribute, or SignatureFormatError."""
    match = _SIGNATURE.match(text)
    if match is None:
        raise SignatureFormatError(f"signature must have the form {SIGNATURE_FORMAT}")
    try:
        raw = base64.urlsafe_b64decode(match.group(2) + "==")
    except (binascii.Error, ValueError):  # pragma: no cover - the pattern admits only base64url
        raise SignatureFormatError(f"signature must have the form {SIGNATURE_FORMAT}") from None
    return match.group(1), raw


def verifies(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def public_key_base64(key: Ed25519PublicKey) -> str:
    """Standard base64 of the 32 raw bytes of ``key``: the form covenants register."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _numbers(value: Any) -> Any:  # noqa: PLR0911 - one return per kind of JSON value
    """``value`` with every float replaced by its ECMAScript text (as an orjson fragment)."""
    cls = value.__class__
    if cls is str or value is None or cls is bool:  # the common cases first, decided at once
        return value
    if cls is dict:
        return {k: v if v.__class__ is str else _numbers(v) for k, v in value.items()}
    if cls is float:
        return orjson.Fragment(es_number(value))
    if cls is int and -_EXACT_INTEGERS <= value <= _EXACT_INTEGERS:
        return value
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, float):
        return orjson.Fragment(es_number(value))
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _EXACT_INTEGERS:
        return orjson.Fragment(es_number(float(value)))
    return value


def es_number(value: float) -> str:
    """ECMAScript Number::toString of a finite double, as RFC 8785 section 3.2.2.3 requires."""
    if not math.isfinite(value):
        raise ValueError("JSON has no NaN or Infinity")
    if value.__class__ is float:
        text = repr(value)
        if "e" not in text and not text.endswith(".0"):
            # Python's shortest repr in fixed notation (1e-4 <= |value| < 1e16), not integral:
            # the same digits and decimal point as ECMAScript's (whose fixed range is wider)
            return text
    return _es_number_general(value)


def _es_number_general(value: float) -> str:
    """:func:`es_number` by the digits and exponent of the repr (any finite double)."""
    if value == 0:
        return "0"
    minus = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0") if fraction != "0" else whole.lstrip("0")
    # position of the decimal point relative to the first significant digit
    point = len(whole.lstrip("0")) if whole != "0" else -(len(fraction) - len(fraction.lstrip("0")))
    point += int(exp_text) if exp_text else 0
    digits = digits.rstrip("0") or "0"
    k, n = len(digits), point
    if k <= n <= 21:
        return minus + digits + "0" * (n - k)
    if 0 < n <= 21:
        return minus + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return minus + "0." + "0" * (-n) + digits
    exponent = n - 1
    mark = "+" if exponent >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{minus}{head}e{mark}{abs(exponent)}"


def verify_envelope(
    envelope: Mapping[str, Any], keyring: Keyring, day: date, *, signal_id: str | None = None
) -> None:
    """Check the signature of a decoded envelope as sent, or raise :class:`SignalRejected`.

    ``day`` is the Dutch calendar day the signal is decided for: covenant versions in force and
    key validity windows are taken on that day. Reasons name the partner, the key id and the
    fix; never a signature, a key or anything from ``data``.
    """
    source = str(envelope.get("source"))
    duty = keyring.partner(source, day)
    text = envelope.get("signature")
    if text is None:
        if duty.required:
            raise SignalRejected(
                "unsigned",
                f"signal is not signed, but partner {source!r} must sign every signal "
                f"({_duty(duty)}). Fix: sign it with the partner's key (schakel publish "
                f"--sign-with KEYFILE, or the client SDK); create and register a key with "
                f"`schakel keys partner {source}`",
                signal_id=signal_id,
            )
        return
    try:
        key_id, signature = parse_signature(str(text))
    except SignatureFormatError as exc:
        raise SignalRejected(
            "malformed_signature",
            f"{exc}. Fix: sign with `schakel publish --sign-with KEYFILE` or the client SDK",
            signal_id=signal_id,
        ) from None
    message = canonical_envelope(envelope)
    key = duty.keys.get(key_id)
    if key is None:
        _unregistered(keyring, key_id, source, day, signature, message, signal_id)
    if not verifies(key.public_key, signature, message):
        # key ids are unique across partners: no other key is tried (one verification)
        raise _bad_signature(key_id, source, signal_id)
    if key.valid_from is not None and day < key.valid_from:
        raise SignalRejected(
            "key_not_yet_valid",
            f"key {key_id!r} of partner {source!r} is not valid before {key.valid_from} "
            f"({key.covenant}). Fix: sign with the partner's current key until then",
            signal_id=signal_id,
        )
    if key.valid_until is not None and day > key.valid_until:
        raise SignalRejected(
            "key_expired",
            f"key {key_id!r} of partner {source!r} expired on {key.valid_until} "
            f"({key.covenant}). Fix: sign with the partner's current key; register a successor "
            "whose valid_from lies before the old key's valid_until",
            signal_id=signal_id,
        )


def _duty(duty: PartnerKeys) -> str:
    if duty.keys:
        return f"it has registered keys in {', '.join(duty.required_by)}"
    return f"{', '.join(duty.required_by)} requires signatures"


def _bad_signature(key_id: str, source: str, signal_id: str | None) -> SignalRejected:
    return SignalRejected(
        "bad_signature",
        f"signature does not verify with key {key_id!r} of partner {source!r}: the envelope "
        "was changed after it was signed, or signed with another private key. Fix: sign "
        f"exactly the envelope sent (canonical form: docs/covenants.md) with the private "
        f"key registered as {key_id!r}",
        signal_id=signal_id,
    )


def _unregistered(
    keyring: Keyring,
    key_id: str,
    source: str,
    day: date,
    signature: bytes,
    message: bytes,
    signal_id: str | None,
) -> NoReturn:
    """Raise the reason a signature under a key id ``source`` has no key of in force fails.

    At most one key is tried (:meth:`Keyring.holder`): another partner's (``foreign_key``), or
    the source's own key from a covenant that ended (``covenant_ended``).
    """
    holder = keyring.holder(key_id, source, day)
    if holder is not None and holder.partner != source:
        if verifies(holder.public_key, signature, message):
            raise SignalRejected(
                "foreign_key",
                f"signed with key {key_id!r} of partner {holder.partner!r}, not with a key of "
                f"the source {source!r}: a partner may sign only its own signals. Fix: the "
                f"source partner signs with its own registered key",
                signal_id=signal_id,
            )
    elif holder is not None:
        if not verifies(holder.public_key, signature, message):
            raise _bad_signature(key_id, source, signal_id)
        cov = keyring.covenant(holder.covenant)
        raise SignalRejected(
            "covenant_ended",
            f"signed with key {key_id!r} of partner {source!r}, registered by covenant "
            f"{cov.key}, which {validity.end_text(cov)}; no covenant in force registers "
            f"this key, so nothing {source!r} sends under it can be delivered. Fix: stop "
            f"sending under {cov.covenant}, or put a new version in force that names "
            f"{source!r} with its key",
            signal_id=signal_id,
        )
    raise SignalRejected(
        "unknown_key",
        f"signed with key {key_id!r}, which no covenant in force registers for partner "
        f"{source!r}. Fix: sign with one of its registered keys, or add this key's public "
        f"half to the party's public_keys (see `schakel keys partner {source}`)",
        signal_id=signal_id,
    )
