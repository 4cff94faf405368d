"""TEST keys: the demo partners' signing keys, derived from a public seed, and how to spot one.

Every demo partner signs with an Ed25519 key derived from a fixed, published seed text and
its partner id, so demo traffic is signed and deterministic. Anyone can derive these keys, so
they prove nothing: a hub accepts them only in demo mode (``schakel up --demo``,
``SCHAKEL_DEMO=1``), and everywhere else — router, gateway, ``schakel publish``, replay and
``schakel covenant check`` — a TEST key is refused.

A TEST key is recognised from the key itself, whatever name it was derived for and whatever
its key id or comment says: the hub derives the TEST key of every name it could have been
derived for and compares. Those names are the shipped demo partners (:data:`DEMO_PARTNERS`,
the partners of ``covenants/demo/keys.yaml``, whether or not that file is read) and every name
the covenant set at hand writes (:func:`derivation_names`: covenant ids, party ids and names,
key ids, each with and without the ``demo-`` prefix). So registering for Liander the TEST key of
``hhnk``, of ``schakel`` or of ``liander-2026`` is refused even when no covenant loaded names
that partner.

**The limit, honestly.** The derivation accepts any text, so a TEST key derived for a name
that appears nowhere in the hub (say ``qwerty``) is not recognised: recognising every possible
derivation would need the seed's preimages. Such a key is as public as any other TEST key, but
only someone who set out to register a derivable key produces one; every key the demo, the
tests or ``schakel publish --demo`` make is recognised. A real partner's key is made with
``schakel keys partner``, which draws it from the operating system's randomness.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

if TYPE_CHECKING:
    from services.core.covenant.model import Covenant

__all__ = [
    "DEMO_KEY_PREFIX",
    "DEMO_PARTNERS",
    "TEST_KEY_WARNING",
    "demo_key_id",
    "demo_private_key",
    "demo_public_key",
    "derivation_names",
    "owner_of_test_key",
]

DEMO_KEY_PREFIX = "demo-"
"""Key ids of TEST keys are ``demo-<partner>``: unique per partner, recognisable in reasons."""

TEST_KEY_WARNING = (
    "TEST KEY: derived from a public seed, anyone can sign with it; demo and tests only"
)
DEMO_PARTNERS = (
    "liander",
    "pwn",
    "woonwaard",
    "hhnk",
    "elan-wonen",
    "hvc",
    "schakel",
    "gemeente-alkmaar",
    "gemeente-zaanstad",
    "gemeente-haarlem",
    "meld-misdaad-anoniem",
    "chemiehandel-nh",
    "lto-meldpunt",
    "politie-nh",
    "om-nh",
    "uwv",
    "odnhn",
    "riec-nh",
)
"""The partners the demo signs for (those of ``covenants/demo/keys.yaml``; a test keeps the
two lists equal): their TEST keys are recognised wherever they are registered."""
_SEED = "schakel demo TEST key, public and never for production: "
_MAX_KEY_ID = 63


def demo_key_id(partner_id: str) -> str:
    """The key id the demo registers for ``partner_id``'s TEST key (``demo-<partner>``)."""
    key_id = DEMO_KEY_PREFIX + partner_id
    if len(key_id) > _MAX_KEY_ID:
        raise ValueError(
            f"partner id {partner_id!r} is too long for a demo key id (at most "
            f"{_MAX_KEY_ID - len(DEMO_KEY_PREFIX)} characters)"
        )
    return key_id


def demo_private_key(partner_id: str) -> Ed25519PrivateKey:
    """The TEST private key of a partner (derived from a public seed: not a secret)."""
    seed = hashlib.sha256((_SEED + partner_id).encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


@lru_cache(maxsize=1024)
def demo_public_key(partner_id: str) -> str:
    """The base64 public key of a partner's TEST key, as a registration would write it."""
    public = demo_private_key(partner_id).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()  # as services.core.signing.public_key_base64


def derivation_names(covenants: Iterable[Covenant]) -> list[str]:
    """Every name a TEST key registered in ``covenants`` could have been derived for: each
    covenant id, party id (also as its demo key id ``demo-<party>``), party name and key id
    (also without its ``demo-`` prefix)."""
    names: set[str] = set()
    for covenant in covenants:
        names.add(covenant.covenant)
        for party_id, party in covenant.parties.items():
            names.update((party_id, DEMO_KEY_PREFIX + party_id, party.name))
            for key in party.public_keys:
                names.update((key.id, key.id.removeprefix(DEMO_KEY_PREFIX)))
    return sorted(names)


def owner_of_test_key(ed25519: str, names: Iterable[str]) -> str | None:
    """The name (among ``names`` and :data:`DEMO_PARTNERS`) whose TEST key ``ed25519`` is, or
    None for any other key.

    ``ed25519`` is compared as registered (standard base64); the derivation is cached, so
    asking about every name of a covenant set costs a few microseconds once it is warm.
    """
    for name in (*names, *DEMO_PARTNERS):
        if demo_public_key(name) == ed25519:
            return name
    return None
