"""The partners' registered signing keys, as the covenant versions in force on a day have them.

Which signals must be signed (documented in docs/covenants.md, "Signed signals"): a partner
must sign when a covenant version in force names it as a party and either registers a key for
it or says ``signatures: required`` (the default). A partner no covenant in force names cannot
have anything delivered, so its unsigned signals reach the policy only to be withheld; a
signature it does send is still checked.

TEST keys (derived from the public demo seed, :mod:`services.core.demo_keys`) count only in a
keyring built for demo mode (``test_keys=True``); any other keyring leaves them out, so a
signal signed with one is refused even if a TEST key slipped into a covenant.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.core.covenant import validity
from services.core.covenant.model import Covenant, PartyKey
from services.core.demo_keys import derivation_names, owner_of_test_key
from services.core.time_window import TimeWindow
from services.core.verified_roots import VerifiedRoots

ED25519_PUBLIC_BYTES = 32


def decode_public_key(text: str) -> Ed25519PublicKey | None:
    """The Ed25519 public key in standard base64 ``text``, or None when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != ED25519_PUBLIC_BYTES:
        return None
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class RegisteredKey:
    """One public key of one partner, as a covenant version registers it."""

    partner: str
    key_id: str
    public_key: Ed25519PublicKey = field(repr=False)
    public_bytes: bytes = field(repr=False)
    """The 32 raw bytes of :attr:`public_key`."""
    valid_from: date | None
    valid_until: date | None
    covenant: str
    """``covenant@version`` that registers it (named in reasons)."""

    def valid_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_until is None or day <= self.valid_until
        )


@dataclass(frozen=True, slots=True)
class PartnerKeys:
    """What one partner's signatures are checked against on one day."""

    partner: str
    keys: dict[str, RegisteredKey]
    """Key id -> key, from every covenant version in force naming the partner."""
    required_by: tuple[str, ...]
    """Covenant versions in force that make this partner sign (``covenant@version``)."""

    @property
    def required(self) -> bool:
        return bool(self.required_by)


class Keyring:
    """The registered keys of every covenant version; built once per compiled policy."""

    def __init__(self, covenants: Iterable[Covenant], *, test_keys: bool = False) -> None:
        self._covenants = tuple(covenants)
        self.test_keys = test_keys
        """Demo mode: TEST keys count (never in a deployment)."""
        self._names = derivation_names(self._covenants)
        """Every name a TEST key registered here could be derived for (besides the demo's)."""
        self._keys: dict[str, list[RegisteredKey]] = {}
        for cov in self._covenants:
            for partner, party in cov.parties.items():
                for key in party.public_keys:
                    registered = self._registered(partner, key, cov.key)
                    if registered is not None:  # the checker reports keys that do not decode
                        self._keys.setdefault(key.id, []).append(registered)
        self._days: dict[date, dict[str, PartnerKeys]] = {}
        self._by_key = {cov.key: cov for cov in self._covenants}
        self._window: TimeWindow | None = None
        self.roots = VerifiedRoots()
        """Batch root signatures already verified (:mod:`services.core.batch_signing`)."""

    def partner(self, partner: str, day: date) -> PartnerKeys:
        """The keys and the signing duty of ``partner`` under the versions in force on ``day``."""
        by_partner = self._days.get(day)
        if by_partner is None:
            by_partner = self._build(day)
            if len(self._days) >= 4:
                self._days.clear()
            self._days[day] = by_partner
        found = by_partner.get(partner)
        return found if found is not None else PartnerKeys(partner, {}, ())

    def holder(self, key_id: str, partner: str, day: date) -> RegisteredKey | None:
        """The one key to check a signature under ``key_id`` against, when ``partner`` has no
        key of that id in force on ``day``; None when there is none.

        That is another partner's key of that id under a version in force (the signature is
        foreign), else ``partner``'s own key of that id from the version that most recently
        ended (the signal comes after its covenant ended). Key ids are unique across partners
        (``schakel covenant check`` refuses a repeat), and even a set that was not checked
        yields one key here, so a signature costs at most one verification.
        """
        found = self._keys.get(key_id, ())
        in_force = {c.key for c in self._in_force(day)}
        for key in found:
            if key.partner != partner and key.covenant in in_force:
                return key
        own = [
            (validity.recency(self._by_key[key.covenant], day), key)
            for key in found
            if key.partner == partner and validity.ended(self._by_key[key.covenant], day)
        ]
        return max(own, key=lambda pair: pair[0])[1] if own else None

    def covenant(self, key: str) -> Covenant:
        """The covenant version ``covenant@version`` (one that registers a key here)."""
        return self._by_key[key]

    @property
    def window(self) -> TimeWindow:
        """The plausible signal times under these covenants (built on first use)."""
        if self._window is None:
            self._window = TimeWindow(self._covenants)
        return self._window

    def _in_force(self, day: date) -> list[Covenant]:
        return [c for c in self._covenants if c.in_force(day)]

    def _build(self, day: date) -> dict[str, PartnerKeys]:
        keys: dict[str, dict[str, RegisteredKey]] = {}
        required: dict[str, list[str]] = {}
        for cov in self._in_force(day):
            for partner, party in cov.parties.items():
                mine = keys.setdefault(partner, {})
                for key in party.public_keys:
                    registered = self._registered(partner, key, cov.key)
                    if registered is not None:
                        mine.setdefault(key.id, registered)
                if cov.signatures == "required" or party.public_keys:
                    required.setdefault(partner, []).append(cov.key)
        return {
            partner: PartnerKeys(partner, found, tuple(required.get(partner, ())))
            for partner, found in keys.items()
        }

    def _registered(self, partner: str, key: PartyKey, covenant: str) -> RegisteredKey | None:
        if not self.test_keys and owner_of_test_key(key.ed25519, [partner, *self._names]):
            return None  # the checker reports it; outside demo mode it never verifies anything
        return _registered(partner, key, covenant)


def _registered(partner: str, key: PartyKey, covenant: str) -> RegisteredKey | None:
    public = decode_public_key(key.ed25519)
    if public is None:
        return None
    raw = public.public_bytes_raw()
    return RegisteredKey(partner, key.id, public, raw, key.valid_from, key.valid_until, covenant)
