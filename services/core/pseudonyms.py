"""Per-domain pseudonyms for identifier values.

A *domain* is one recipient under one covenant. Inside a domain the same identifier always gets
the same pseudonym, so a recipient can link its own signals; across domains the pseudonyms are
unrelated, so two recipients cannot join their feeds (PRODUCT.md §4). The hub itself uses
*internal* domains — :data:`INTERNAL` for stacking and look-ups, and the stacking locator —
whose pseudonyms never leave the hub and link across every covenant.

Construction, per key version and domain:

* a domain key is derived with HKDF-SHA256 from the version's secret, with
  ``info = "<label>|<hmac or siv>"``, once, then cached. The label of a covenant domain is
  ``schakel/pseudonym/v1|<covenant>|<recipient>``; that of an internal domain is
  ``schakel/hub-internal/v1|<name>``, which no covenant/recipient pair can spell, whatever
  their names (a key's ``derivation`` scheme 2, see :mod:`services.core.keys`);
* the plaintext is ``f"{kind}\\x1f{canonical}"`` so equal values of different kinds differ;
* **irreversible** domains: HMAC-SHA-256, truncated to 128 bits, base32 lower-case without
  padding, written ``p{version}.{token}``;
* **reversible** domains (the covenant allows re-identification on request): deterministic
  AES-SIV with the domain's label as associated data, url-safe base64 without padding,
  written ``r{version}.{token}``.

The key version is part of the text, so keys can rotate without breaking history: old
pseudonyms stay recognisable (:meth:`Pseudonymiser.all_pseudonyms`) and, in reversible
domains, re-identifiable. This module is pure: keys come from a :class:`KeyStore`.

**Why the label scheme belongs to the key.** Before internal domains had a label of their own,
``INTERNAL`` was derived as the covenant domain ``hub``/``internal``: a covenant with id
``hub`` and a recipient ``internal`` would have received the hub's own cross-covenant
pseudonyms. Changing a derivation label changes every pseudonym made with it, and internal
pseudonyms are stored (the subject index and the hash-chained audit records that AVG art. 15
look-ups search, the stacking evidence, the locator tokens of open alerts), while covenant
pseudonyms are held by recipients and named in re-identification requests. So the scheme is a
property of the key version (:attr:`~services.core.keys.PseudonymKey.derivation`): every key
made from now on (a new store, ``schakel keys rotate``) uses the separated labels; keys made
before keep the old scheme for life, so everything they made resolves exactly as before (a
rotation is already where pseudonyms change). Covenant domains derive as they always did under
both schemes. For legacy keys the separation is enforced by the name: :class:`Domain` refuses
a covenant domain under the reserved covenant id ``hub`` (and ``schakel covenant check``
refuses such a covenant), so the old collision cannot be reached either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from services.core.errors import KeyStoreError, SchakelError
from services.core.keys import LEGACY_DERIVATION, KeyStore

if TYPE_CHECKING:
    from hashlib import _Hash

__all__ = [
    "INTERNAL",
    "RESERVED_COVENANT_IDS",
    "Domain",
    "PseudonymError",
    "Pseudonymiser",
    "UnknownKeyVersionError",
]

_LABEL: Final = "schakel/pseudonym/v1"
_INTERNAL_LABEL: Final = "schakel/hub-internal/v1"
HUB: Final = "hub"
"""The covenant id under which internal domains are shown (``hub/internal``)."""
RESERVED_COVENANT_IDS: Final = frozenset({HUB})
"""Covenant ids no covenant may use: with keys of the legacy derivation scheme, a covenant
domain under ``hub`` would derive the hub's internal domain keys."""
_EXCHANGE_LABEL: Final = "schakel/exchange-id/v1"
"""HKDF info of the key behind the exchange ids given to recipients (not a pseudonym domain)."""
_SEPARATOR: Final = "\x1f"  # ASCII unit separator between kind and canonical value
_HMAC_BYTES: Final = 16  # 128-bit tokens
_HMAC_TOKEN_CHARS: Final = 26  # ceil(128 / 5)
_SIV_KEY_BYTES: Final = 64  # AES-256-SIV
_HMAC_KEY_BYTES: Final = 32
_SHA256_BLOCK: Final = 64

_B32_ALPHABET: Final = "abcdefghijklmnopqrstuvwxyz234567"
# Every pair of base32 characters, indexed by 10 bits: 13 look-ups encode a 128-bit token,
# several times faster than base64.b32encode (which is pure Python on 3.11).
_B32_PAIRS: Final = tuple(a + b for a in _B32_ALPHABET for b in _B32_ALPHABET)
_B32_CHARS: Final = frozenset(_B32_ALPHABET)


class PseudonymError(SchakelError):
    """A pseudonym can't be made, parsed or re-identified. Never carries the identifier."""


class UnknownKeyVersionError(PseudonymError, KeyStoreError):
    """A pseudonym names a key version the key store does not hold.

    Both a :class:`PseudonymError` (the pseudonym can't be resolved) and a
    :class:`KeyStoreError` (the store lacks a key), so either ``except`` catches it.
    """


def _check_name(what: str, value: str) -> None:
    if not value:
        raise PseudonymError(f"a pseudonym domain needs a {what}")
    if "|" in value or not value.isprintable():
        raise PseudonymError(
            f"the {what} of a pseudonym domain may not contain '|' or control characters"
        )


@dataclass(frozen=True, slots=True)
class Domain:
    """Where a pseudonym is valid: one recipient under one covenant, or one of the hub's
    internal domains (``internal=True``; build those with :meth:`hub`).

    ``reversible`` is True where the covenant allows re-identification on request; such
    domains use AES-SIV, the others a one-way HMAC.
    """

    covenant_id: str
    recipient: str
    reversible: bool
    internal: bool = False
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # '|' separates the parts of the derivation label, so it may not occur in them:
        # ("a|b", "c") and ("a", "b|c") must not share a domain key.
        _check_name("covenant id", self.covenant_id)
        _check_name("recipient", self.recipient)
        if self.internal and self.covenant_id != HUB:
            raise PseudonymError(f"an internal pseudonym domain lives under {HUB!r}")
        if not self.internal and self.covenant_id in RESERVED_COVENANT_IDS:
            raise PseudonymError(
                f"covenant id {self.covenant_id!r} is reserved for the hub's own pseudonym "
                "domains; give the covenant another id"
            )
        object.__setattr__(
            self,
            "_hash",
            hash((self.covenant_id, self.recipient, self.reversible, self.internal)),
        )

    @classmethod
    def hub(cls, name: str, *, reversible: bool) -> Domain:
        """One of the hub's internal domains (its pseudonyms never leave the hub)."""
        return cls(HUB, name, reversible, internal=True)

    def __hash__(self) -> int:
        # Computed once: a domain is part of every pseudonym cache key.
        return self._hash

    def __reduce__(self) -> tuple[type[Domain], tuple[str, str, bool, bool]]:
        # String hashes differ between processes: rebuild (and recompute) rather than copy.
        return Domain, (self.covenant_id, self.recipient, self.reversible, self.internal)

    def label(self, derivation: int) -> str:
        """The domain as text under a key's derivation scheme: the AES-SIV associated data
        and the base of the HKDF info. Internal and covenant labels never coincide (except
        under the legacy scheme, where the reserved covenant id keeps them apart)."""
        if self.internal and derivation != LEGACY_DERIVATION:
            return f"{_INTERNAL_LABEL}|{self.recipient}"
        return f"{_LABEL}|{self.covenant_id}|{self.recipient}"

    def __str__(self) -> str:
        return f"{self.covenant_id}/{self.recipient}"


INTERNAL: Final = Domain.hub("internal", reversible=False)
"""The hub-internal domain for stacking and look-ups. Its pseudonyms never leave the hub."""


def _derive(secret: bytes, info: str, length: int) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=info.encode("utf-8")
    ).derive(secret)


def _hmac_states(key: bytes) -> tuple[_Hash, _Hash]:
    """The HMAC-SHA-256 inner and outer hash states after absorbing the padded key.

    Copying these per message is the RFC 2104 computation without re-hashing the key pads
    on every call; the result equals ``hmac.digest(key, msg, "sha256")``.
    """
    padded = key.ljust(_SHA256_BLOCK, b"\x00")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in padded))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in padded))
    return inner, outer


_TWO_U64: Final = struct.Struct(">QQ")
_LOW60: Final = (1 << 60) - 1


def _b32_token(digest: bytes) -> str:
    """The first 128 bits of ``digest`` as RFC 4648 base32, lower case, without padding.

    128 bits are 26 base32 characters (the last one padded with two zero bits), read here as
    13 ten-bit pairs from two 64-bit words, which keeps the integers small and fast.
    """
    hi, lo = _TWO_U64.unpack_from(digest)
    t = _B32_PAIRS
    mid = ((hi & 15) << 6) | (lo >> 58)  # 4 bits of hi and 6 of lo straddle the words
    lo = (lo << 2) & _LOW60  # the remaining 58 bits of lo plus the 2 padding bits
    return (
        f"{t[hi >> 54]}{t[(hi >> 44) & 1023]}{t[(hi >> 34) & 1023]}{t[(hi >> 24) & 1023]}"
        f"{t[(hi >> 14) & 1023]}{t[(hi >> 4) & 1023]}{t[mid]}"
        f"{t[lo >> 50]}{t[(lo >> 40) & 1023]}{t[(lo >> 30) & 1023]}"
        f"{t[(lo >> 20) & 1023]}{t[(lo >> 10) & 1023]}{t[lo & 1023]}"
    )


def _message(kind: str, canonical: str) -> bytes:
    if not kind or _SEPARATOR in kind:
        raise PseudonymError("an identifier kind must be non-empty and free of the \\x1f separator")
    if not canonical:
        raise PseudonymError(f"an empty {kind} value cannot be pseudonymised")
    try:
        return f"{kind}{_SEPARATOR}{canonical}".encode()
    except UnicodeEncodeError:
        raise PseudonymError(f"the {kind} value is not valid Unicode text") from None


_HmacEntry = tuple[str, "_Hash", "_Hash"]
_SivEntry = tuple[str, AESSIV, list[bytes]]
_CacheKey = tuple[bytes, int, "Domain"]

PSEUDONYM_CACHE_SIZE: Final = 65_536
"""Entries of the per-process pseudonym cache (see :class:`Pseudonymiser`)."""


class Pseudonymiser:
    """Makes, recognises and (where allowed) reverses per-domain pseudonyms.

    Domain keys are derived once per (key version, domain) and cached, because this runs for
    every identifier field of every signal times every recipient. The cache is keyed by the
    key's secret, so a store that reloads or rotates is picked up without stale keys.

    Pseudonyms themselves are kept in a bounded LRU cache of ``cache_size`` entries
    (:data:`PSEUDONYM_CACHE_SIZE` by default, 0 turns it off), keyed by (key secret, key
    version, domain, kind, canonical value): identifiers recur in real traffic (the same
    connection or address is reported again), and a hit costs a fraction of the HMAC. The
    keys hold canonical identifiers, so the cache is deliberately small and lives only in the
    memory of the process that already handles those identifiers while deciding a signal;
    it is never written, logged or shown (``repr`` gives counts only), the least recently
    used entries leave first, and :meth:`clear_cache` empties it. A rotated key changes the
    cache key, so no pseudonym of a retired version is served for new signals.

    Thread-safe: cached states are only ever copied, never updated in place, and the
    pseudonym cache is :func:`functools.lru_cache`.
    """

    __slots__ = ("_cached", "_exchange", "_hmac", "_keys", "_siv")

    def __init__(self, keys: KeyStore, *, cache_size: int = PSEUDONYM_CACHE_SIZE) -> None:
        self._keys = keys
        self._hmac: dict[_CacheKey, _HmacEntry] = {}
        self._siv: dict[_CacheKey, _SivEntry] = {}
        self._exchange: dict[bytes, tuple[_Hash, _Hash]] = {}
        self._cached: Callable[[bytes, int, int, Domain, str, str], str] = (
            lru_cache(maxsize=cache_size)(self._compute) if cache_size > 0 else self._compute
        )

    def __repr__(self) -> str:
        return f"Pseudonymiser(domains_cached={len(self._hmac) + len(self._siv)})"

    # -- domain keys ---------------------------------------------------------------------

    def _hmac_entry(
        self, domain: Domain, secret: bytes, version: int, derivation: int
    ) -> _HmacEntry:
        cache_key = (secret, derivation, domain)
        entry = self._hmac.get(cache_key)
        if entry is None:
            derived = _derive(secret, f"{domain.label(derivation)}|hmac", _HMAC_KEY_BYTES)
            inner, outer = _hmac_states(derived)
            entry = (f"p{version}.", inner, outer)
            self._hmac[cache_key] = entry
        return entry

    def _siv_entry(self, domain: Domain, secret: bytes, version: int, derivation: int) -> _SivEntry:
        cache_key = (secret, derivation, domain)
        entry = self._siv.get(cache_key)
        if entry is None:
            label = domain.label(derivation)
            derived = _derive(secret, f"{label}|siv", _SIV_KEY_BYTES)
            entry = (f"r{version}.", AESSIV(derived), [label.encode("utf-8")])
            self._siv[cache_key] = entry
        return entry

    def _make(
        self, domain: Domain, secret: bytes, version: int, derivation: int, message: bytes
    ) -> str:
        if domain.reversible:
            prefix, siv, associated = self._siv_entry(domain, secret, version, derivation)
            token = base64.urlsafe_b64encode(siv.encrypt(message, associated))
            return prefix + token.rstrip(b"=").decode("ascii")
        prefix, inner, outer = self._hmac_entry(domain, secret, version, derivation)
        h = inner.copy()
        h.update(message)
        o = outer.copy()
        o.update(h.digest())
        return prefix + _b32_token(o.digest())

    # -- public API ----------------------------------------------------------------------

    def pseudonym(self, domain: Domain, kind: str, canonical: str) -> str:
        """The pseudonym of a canonical identifier value in ``domain``, under the active key.

        ``kind`` is the identifier kind (e.g. ``"ean"``); ``canonical`` its normalised value.
        The same inputs and key version always give the same pseudonym.
        """
        # The hot path: it runs for every identifier field times every recipient.
        key = self._keys.active_pseudonym_key()
        return self._cached(key.secret, key.version, key.derivation, domain, kind, canonical)

    def _compute(
        self,
        secret: bytes,
        version: int,
        derivation: int,
        domain: Domain,
        kind: str,
        canonical: str,
    ) -> str:
        """:meth:`pseudonym` without the cache (``secret``, ``version`` and ``derivation`` of
        the active key)."""
        if not kind or not canonical or _SEPARATOR in kind:
            message = _message(kind, canonical)  # raises the precise error
        else:
            try:
                message = f"{kind}{_SEPARATOR}{canonical}".encode()
            except UnicodeEncodeError:
                message = _message(kind, canonical)  # raises the precise error
        if domain.reversible:
            return self._make(domain, secret, version, derivation, message)
        entry = self._hmac.get((secret, derivation, domain))
        if entry is None:
            entry = self._hmac_entry(domain, secret, version, derivation)
        prefix, inner, outer = entry
        h = inner.copy()
        h.update(message)
        o = outer.copy()
        o.update(h.digest())
        return prefix + _b32_token(o.digest())

    def exchange_token(self, exchange_id: str) -> str:
        """The id a recipient gets for the exchange ``exchange_id``, keyed with the active key.

        The hub's exchange id is a UUIDv5 of (source, signal id, recipient): anyone who can
        list candidate signal ids — the supplier knows all of its own — could tie it to the
        signal, and so link the recipient's record to the supplier's file outside the audited
        re-identification. This HMAC (under its own HKDF label, so it never equals a
        pseudonym) is stable for a key version, so a recipient can drop duplicates, and only
        the hub can link it back (the audit record keeps it). Formatted as a UUID (version 8).
        """
        key = self._keys.active_pseudonym_key()
        states = self._exchange.get(key.secret)
        if states is None:
            states = _hmac_states(_derive(key.secret, _EXCHANGE_LABEL, _HMAC_KEY_BYTES))
            self._exchange[key.secret] = states
        inner, outer = states
        h = inner.copy()
        h.update(exchange_id.encode())
        o = outer.copy()
        o.update(h.digest())
        x = o.hexdigest()
        return f"{x[:8]}-{x[8:12]}-8{x[13:16]}-{'89ab'[int(x[16], 16) & 3]}{x[17:20]}-{x[20:32]}"

    def cache_info(self) -> tuple[int, int, int]:
        """``(hits, misses, entries)`` of the pseudonym cache (no values, only counts)."""
        info = getattr(self._cached, "cache_info", None)
        if info is None:
            return 0, 0, 0
        stats = info()
        return stats.hits, stats.misses, stats.currsize

    def clear_cache(self) -> None:
        """Forget every cached pseudonym (and with it the identifiers held as cache keys)."""
        clear = getattr(self._cached, "cache_clear", None)
        if clear is not None:
            clear()

    def all_pseudonyms(self, domain: Domain, kind: str, canonical: str) -> list[str]:
        """The value's pseudonym under every key version, oldest first.

        Used to find a subject's records across key rotations.
        """
        message = _message(kind, canonical)
        return [
            self._make(domain, key.secret, key.version, key.derivation, message)
            for key in self._keys.pseudonym_keys()
        ]

    def key_version_of(self, pseudonym: str) -> int:
        """The key version a pseudonym was made with (read from its ``p``/``r`` prefix)."""
        return _parse(pseudonym)[1]

    def reidentify(self, domain: Domain, pseudonym: str) -> tuple[str, str]:
        """The ``(kind, canonical)`` a reversible pseudonym stands for.

        Only for reversible domains, and only with the domain the pseudonym was issued in.
        The caller is responsible for authorisation and for auditing the request.

        Raises :class:`PseudonymError` when the domain is irreversible, the pseudonym is
        one-way, malformed, altered or from another domain, and
        :class:`UnknownKeyVersionError` when its key version is not in the store.
        """
        if not domain.reversible:
            raise PseudonymError(
                f"domain {domain} is not reversible: its covenant does not allow re-identification"
            )
        mode, version, token = _parse(pseudonym)
        if mode != "r":
            raise PseudonymError(
                "the pseudonym is one-way (prefix 'p') and cannot be re-identified; "
                f"it was not issued in the reversible domain {domain}"
            )
        key = next((k for k in self._keys.pseudonym_keys() if k.version == version), None)
        if key is None:
            raise UnknownKeyVersionError(
                f"the pseudonym was made with key version {version}, which the key store "
                "does not hold; restore the key store that issued it"
            )
        try:
            sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            sealed = b""
        # Only the canonical encoding counts: a token whose unused low bits were changed
        # decodes to the same bytes but is not a pseudonym the hub issued.
        if not sealed or base64.urlsafe_b64encode(sealed).rstrip(b"=") != token.encode("ascii"):
            raise PseudonymError("the pseudonym token is not valid base64; it was altered")
        _, siv, associated = self._siv_entry(domain, key.secret, key.version, key.derivation)
        try:
            plain = siv.decrypt(sealed, associated)
        except (InvalidTag, ValueError):
            raise PseudonymError(
                f"the pseudonym was not issued in domain {domain} or it was altered"
            ) from None
        # Authentic ciphertexts always hold "kind\x1fvalue"; anything else needs a forged key.
        try:
            kind, separator, canonical = plain.decode("utf-8").partition(_SEPARATOR)
        except UnicodeDecodeError:  # pragma: no cover - only reachable with a forged key
            separator = ""
        if not separator:  # pragma: no cover - only reachable with a forged key
            raise PseudonymError("the pseudonym does not decrypt to a kind and value")
        return kind, canonical


_URLSAFE_B64: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _parse(pseudonym: str) -> tuple[str, int, str]:
    """Split ``p3.token``/``r3.token`` into mode, version and token, checking the form."""
    head, dot, token = pseudonym.partition(".")
    mode, digits = head[:1], head[1:]
    if (
        not dot
        or mode not in ("p", "r")
        or not (digits.isascii() and digits.isdigit())
        or digits.startswith("0")
    ):
        raise PseudonymError(
            "not a pseudonym: expected 'p<version>.<token>' or 'r<version>.<token>'"
        )
    if mode == "p":
        if (
            len(token) != _HMAC_TOKEN_CHARS
            or not _B32_CHARS.issuperset(token)
            or _B32_ALPHABET.index(token[-1]) & 3  # the two padding bits must be zero
        ):
            raise PseudonymError("the pseudonym token is malformed; it was altered")
    elif not token or not _URLSAFE_B64.issuperset(token):
        raise PseudonymError("the pseudonym token is malformed; it was altered")
    return mode, int(digits), token
