"""Per-domain pseudonyms: construction, separation of domains, rotation, re-identification."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from hypothesis import assume, given
from hypothesis import strategies as st

from services.core import pseudonyms as pseudonyms_module
from services.core.errors import KeyStoreError, SchakelError
from services.core.keys import (
    PseudonymKey,
    SigningKey,
    active_key,
    check_pseudonym_keys,
    rotated,
    signing_key_id,
)
from services.core.pseudonyms import (
    INTERNAL,
    Domain,
    PseudonymError,
    Pseudonymiser,
    UnknownKeyVersionError,
)
from services.keys.testing import MemoryKeyStore

T0 = datetime(2025, 3, 1, tzinfo=UTC)

RIEC = Domain("nh-drugs-2025", "riec-nh", reversible=True)
POLICE = Domain("nh-drugs-2025", "politie-nh", reversible=False)
GEMEENTE = Domain("nh-drugs-2025", "gemeente-alkmaar", reversible=False)

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,15}", fullmatch=True).filter(
    lambda name: name != "hub"  # reserved for internal domains (test_pseudonym_domains.py)
)
kinds = st.sampled_from(["ean", "postcode6", "kvk", "address", "licence_plate", "x"])
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@pytest.fixture
def store() -> MemoryKeyStore:
    return MemoryKeyStore.for_tests()


@pytest.fixture
def pz(store: MemoryKeyStore) -> Pseudonymiser:
    return Pseudonymiser(store)


def _pz() -> Pseudonymiser:
    """A pseudonymiser for hypothesis tests (function-scoped fixtures don't mix with @given)."""
    return Pseudonymiser(MemoryKeyStore.for_tests())


# -- construction ----------------------------------------------------------------------------


def _domain_key(secret: bytes, domain: Domain, mode: str, length: int) -> bytes:
    info = f"schakel/pseudonym/v1|{domain.covenant_id}|{domain.recipient}|{mode}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


def test_hmac_pseudonym_follows_the_documented_construction(store, pz):
    secret = store.active_pseudonym_key().secret
    key = _domain_key(secret, POLICE, "hmac", 32)
    digest = hmac.digest(key, b"ean\x1f8712345678906", "sha256")[:16]
    token = base64.b32encode(digest).decode().rstrip("=").lower()
    assert pz.pseudonym(POLICE, "ean", "8712345678906") == f"p1.{token}"


def test_siv_pseudonym_follows_the_documented_construction(store, pz):
    secret = store.active_pseudonym_key().secret
    siv = AESSIV(_domain_key(secret, RIEC, "siv", 64))
    sealed = siv.encrypt(b"ean\x1f8712345678906", [b"schakel/pseudonym/v1|nh-drugs-2025|riec-nh"])
    token = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
    assert pz.pseudonym(RIEC, "ean", "8712345678906") == f"r1.{token}"


@given(digest=st.binary(min_size=32, max_size=32))
def test_base32_encoding_matches_rfc4648(digest):
    expected = base64.b32encode(digest[:16]).decode().rstrip("=").lower()
    assert pseudonyms_module._b32_token(digest) == expected


def test_pseudonym_text_shows_version_and_reversibility(pz):
    assert re.fullmatch(r"p1\.[a-z2-7]{26}", pz.pseudonym(POLICE, "ean", "8712345678906"))
    assert re.fullmatch(r"r1\.[A-Za-z0-9_-]+", pz.pseudonym(RIEC, "ean", "8712345678906"))
    assert re.fullmatch(r"p1\.[a-z2-7]{26}", pz.pseudonym(INTERNAL, "ean", "8712345678906"))


def test_internal_domain_is_the_irreversible_hub_domain():
    assert Domain.hub("internal", reversible=False) == INTERNAL
    assert not INTERNAL.reversible
    # no covenant domain can stand in for it (tests/core/test_pseudonym_domains.py)
    with pytest.raises(PseudonymError, match="reserved"):
        Domain("hub", "internal", reversible=False)


def test_same_seed_gives_the_same_pseudonyms_in_a_new_process_state():
    first = Pseudonymiser(MemoryKeyStore.for_tests()).pseudonym(RIEC, "kvk", "12345678")
    again = Pseudonymiser(MemoryKeyStore.for_tests()).pseudonym(RIEC, "kvk", "12345678")
    other = Pseudonymiser(MemoryKeyStore.for_tests(b"another seed")).pseudonym(
        RIEC, "kvk", "12345678"
    )
    assert first == again
    assert first != other


# -- stability and separation ----------------------------------------------------------------


@given(kind=kinds, value=values, reversible=st.booleans())
def test_stable_within_a_domain(kind, value, reversible):
    domain = Domain("c1", "r1", reversible=reversible)
    pz = _pz()
    assert pz.pseudonym(domain, kind, value) == pz.pseudonym(domain, kind, value)
    assert _pz().pseudonym(domain, kind, value) == pz.pseudonym(domain, kind, value)


@given(
    covenants=st.lists(names, min_size=2, max_size=2, unique=True),
    recipients=st.lists(names, min_size=2, max_size=2, unique=True),
    kind=kinds,
    value=values,
    reversible=st.booleans(),
)
def test_different_across_domains(covenants, recipients, kind, value, reversible):
    pz = _pz()
    domains = [Domain(c, r, reversible) for c in covenants for r in recipients]
    made = {pz.pseudonym(d, kind, value) for d in domains}
    assert len(made) == len(domains)  # recipient x covenant: four unrelated pseudonyms


def test_reversible_and_irreversible_domains_differ(pz):
    one_way = Domain("c", "r", reversible=False)
    two_way = Domain("c", "r", reversible=True)
    assert pz.pseudonym(one_way, "ean", "1")[1:] != pz.pseudonym(two_way, "ean", "1")[1:]


@given(kind_pair=st.lists(kinds, min_size=2, max_size=2, unique=True), value=values)
def test_same_value_under_different_kinds_differs(kind_pair, value):
    pz = _pz()
    for domain in (POLICE, RIEC, INTERNAL):
        first, second = (pz.pseudonym(domain, kind, value) for kind in kind_pair)
        assert first != second


@given(pair=st.lists(values, min_size=2, max_size=2, unique=True))
def test_different_values_differ(pair):
    pz = _pz()
    assert pz.pseudonym(POLICE, "ean", pair[0]) != pz.pseudonym(POLICE, "ean", pair[1])
    assert pz.pseudonym(RIEC, "ean", pair[0]) != pz.pseudonym(RIEC, "ean", pair[1])


def test_kind_and_value_cannot_be_shifted_across_the_separator(pz):
    with pytest.raises(PseudonymError, match="separator"):
        pz.pseudonym(POLICE, "a\x1fb", "c")
    assert pz.pseudonym(POLICE, "a", "b\x1fc") != pz.pseudonym(POLICE, "ab", "c")


@pytest.mark.parametrize(
    ("covenant", "recipient"),
    [("", "r"), ("c", ""), ("a|b", "c"), ("c", "r|x"), ("c\n", "r"), ("c", "r\x1f")],
)
def test_domain_parts_are_checked(covenant, recipient):
    with pytest.raises(PseudonymError, match="domain"):
        Domain(covenant, recipient, reversible=False)


def test_empty_kind_or_value_is_refused(pz):
    with pytest.raises(PseudonymError, match="kind"):
        pz.pseudonym(POLICE, "", "1")
    with pytest.raises(PseudonymError, match="empty ean"):
        pz.pseudonym(POLICE, "ean", "")
    with pytest.raises(PseudonymError, match="empty ean"):
        pz.all_pseudonyms(RIEC, "ean", "")


def test_invalid_unicode_is_refused_without_echoing_it(pz):
    with pytest.raises(PseudonymError, match="not valid Unicode") as caught:
        pz.pseudonym(POLICE, "address", "Dorpsstraat \ud800 1")
    assert "Dorpsstraat" not in str(caught.value)


def test_domain_keys_are_derived_once_per_version_and_domain(pz, store, monkeypatch):
    calls: list[str] = []
    real = pseudonyms_module._derive

    def counting(secret: bytes, info: str, length: int) -> bytes:
        calls.append(info)
        return real(secret, info, length)

    monkeypatch.setattr(pseudonyms_module, "_derive", counting)
    for n in range(50):
        pz.pseudonym(POLICE, "ean", str(n))
        pz.pseudonym(RIEC, "ean", str(n))
        pz.all_pseudonyms(GEMEENTE, "ean", str(n))
    assert len(calls) == 3
    store.rotate_pseudonym_key()
    for n in range(50):
        pz.pseudonym(POLICE, "ean", str(n))
        pz.all_pseudonyms(GEMEENTE, "ean", str(n))
    assert len(calls) == 5  # one more for POLICE v2, one for GEMEENTE v2


# -- rotation --------------------------------------------------------------------------------


def test_rotation_changes_new_pseudonyms_and_keeps_old_ones_recognisable(pz, store):
    before = pz.pseudonym(POLICE, "ean", "8712345678906")
    store.rotate_pseudonym_key()
    after = pz.pseudonym(POLICE, "ean", "8712345678906")
    assert before != after
    assert pz.key_version_of(before) == 1
    assert pz.key_version_of(after) == 2
    assert pz.all_pseudonyms(POLICE, "ean", "8712345678906") == [before, after]


@given(kind=kinds, value=values)
def test_all_pseudonyms_has_one_per_version(kind, value):
    store = MemoryKeyStore.for_tests()
    pz = Pseudonymiser(store)
    issued = [pz.pseudonym(RIEC, kind, value)]
    for _ in range(3):
        store.rotate_pseudonym_key()
        issued.append(pz.pseudonym(RIEC, kind, value))
    assert pz.all_pseudonyms(RIEC, kind, value) == issued
    assert [pz.key_version_of(p) for p in issued] == [1, 2, 3, 4]
    assert len(set(issued)) == 4


# -- re-identification -----------------------------------------------------------------------


@given(kind=kinds, value=values)
def test_reidentify_round_trips(kind, value):
    pz = _pz()
    assert pz.reidentify(RIEC, pz.pseudonym(RIEC, kind, value)) == (kind, value)


def test_reidentify_works_for_old_and_new_versions(pz, store):
    old = pz.pseudonym(RIEC, "postcode6", "1811AB")
    store.rotate_pseudonym_key()
    new = pz.pseudonym(RIEC, "postcode6", "1811AB")
    assert old != new
    assert pz.reidentify(RIEC, old) == ("postcode6", "1811AB")
    assert pz.reidentify(RIEC, new) == ("postcode6", "1811AB")


@pytest.mark.parametrize("domain", [POLICE, INTERNAL])
def test_reidentify_refuses_irreversible_domains(pz, domain):
    pseudonym = pz.pseudonym(domain, "ean", "8712345678906")
    with pytest.raises(PseudonymError, match="not reversible"):
        pz.reidentify(domain, pseudonym)


def test_reidentify_refuses_one_way_pseudonyms(pz):
    one_way = pz.pseudonym(POLICE, "ean", "8712345678906")
    with pytest.raises(PseudonymError, match="one-way"):
        pz.reidentify(RIEC, one_way)


@pytest.mark.parametrize(
    "other",
    [
        Domain("nh-drugs-2025", "riec-zeeland", reversible=True),
        Domain("other-covenant", "riec-nh", reversible=True),
    ],
)
def test_reidentify_refuses_pseudonyms_of_another_domain(pz, other):
    pseudonym = pz.pseudonym(other, "ean", "8712345678906")
    with pytest.raises(PseudonymError, match="not issued in domain nh-drugs-2025/riec-nh"):
        pz.reidentify(RIEC, pseudonym)


@given(value=values, data=st.data())
def test_reidentify_detects_any_altered_character(value, data):
    pz = _pz()
    pseudonym = pz.pseudonym(RIEC, "ean", value)
    position = data.draw(st.integers(min_value=3, max_value=len(pseudonym) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    )
    assume(pseudonym[position] != replacement)
    tampered = pseudonym[:position] + replacement + pseudonym[position + 1 :]
    with pytest.raises(PseudonymError):
        pz.reidentify(RIEC, tampered)


def test_reidentify_detects_truncation_and_a_changed_version(pz, store):
    pseudonym = pz.pseudonym(RIEC, "ean", "8712345678906")
    with pytest.raises(PseudonymError, match="altered"):
        pz.reidentify(RIEC, pseudonym[:-4])
    with pytest.raises(PseudonymError, match="altered"):
        pz.reidentify(RIEC, "r1.AAAA")
    store.rotate_pseudonym_key()
    with pytest.raises(PseudonymError, match="altered"):
        pz.reidentify(RIEC, "r2." + pseudonym[3:])


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_reidentify_refuses_non_canonical_tokens(pz):
    """Changing only the unused low bits of the last character still counts as tampering."""
    checked = 0
    for n in range(20):
        pseudonym = pz.pseudonym(RIEC, "ean", "1" * (n + 1))
        if len(pseudonym.split(".", 1)[1]) % 4 == 0:
            continue
        twin = pseudonym[:-1] + _B64[_B64.index(pseudonym[-1]) ^ 1]
        with pytest.raises(PseudonymError, match="altered"):
            pz.reidentify(RIEC, twin)
        checked += 1
    assert checked > 5


def test_one_way_tokens_must_be_canonical_base32(pz):
    pseudonym = pz.pseudonym(POLICE, "ean", "8712345678906")
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    twin = pseudonym[:-1] + alphabet[alphabet.index(pseudonym[-1]) | 1]
    assert pz.key_version_of(pseudonym) == 1
    with pytest.raises(PseudonymError, match="malformed"):
        pz.key_version_of(twin)


def test_reidentify_names_an_unknown_key_version(pz):
    pseudonym = pz.pseudonym(RIEC, "ean", "8712345678906")
    forged = "r9." + pseudonym.split(".", 1)[1]
    with pytest.raises(UnknownKeyVersionError, match="key version 9") as caught:
        pz.reidentify(RIEC, forged)
    assert isinstance(caught.value, KeyStoreError)
    assert isinstance(caught.value, PseudonymError)


@pytest.mark.parametrize(
    "text",
    ["", "p1", "x1.abc", "p.abc", "p01.abc", "p1.", "r1.", "p1.ABC", "r1.a+b", "p1.abc", "1.ab"],
)
def test_malformed_pseudonyms_are_refused(pz, text):
    with pytest.raises(PseudonymError):
        pz.key_version_of(text)
    with pytest.raises(PseudonymError):
        pz.reidentify(RIEC, text)


@given(text=st.text(max_size=40))
def test_parsing_never_fails_with_anything_but_pseudonym_error(text):
    pz = _pz()
    with contextlib.suppress(PseudonymError):
        pz.reidentify(RIEC, text)


def test_errors_never_repeat_the_value(pz):
    value = "Geheime Laan 12 Alkmaar"
    messages: list[str] = []
    for call in (
        lambda: pz.pseudonym(POLICE, "addr\x1fess", value),
        lambda: pz.reidentify(POLICE, pz.pseudonym(POLICE, "address", value)),
        lambda: pz.reidentify(RIEC, pz.pseudonym(RIEC, "address", value)[:-2]),
    ):
        with pytest.raises(SchakelError) as caught:
            call()
        messages.append(str(caught.value))
    assert all(value not in m for m in messages)


# -- key model -------------------------------------------------------------------------------


def _secret_forms(secret: bytes) -> list[str]:
    return [
        repr(secret),
        secret.hex(),
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


def test_no_secret_in_repr_or_str(store, pz):
    key = store.active_pseudonym_key()
    signing = store.signing_key()
    shown = " ".join(
        [repr(key), str(key), repr(signing), str(signing), repr(store), str(store), repr(pz)]
    )
    for secret in (key.secret, signing.private_bytes):
        for form in _secret_forms(secret):
            assert form not in shown
    assert "version=1" in repr(key)
    assert signing.key_id in repr(signing)
    assert "NOT SECRET" in repr(store)


def test_pseudonym_key_is_validated():
    with pytest.raises(KeyStoreError, match="32-byte"):
        PseudonymKey(version=1, secret=b"short", created=T0)
    with pytest.raises(KeyStoreError, match="start at 1"):
        PseudonymKey(version=0, secret=bytes(32), created=T0)
    with pytest.raises(KeyStoreError, match="timezone-aware"):
        PseudonymKey(version=1, secret=bytes(32), created=datetime(2025, 1, 1))


def test_key_ring_checks():
    one = PseudonymKey(1, bytes(32), T0)
    two = PseudonymKey(2, bytes([1]) * 32, T0)
    with pytest.raises(KeyStoreError, match="no pseudonym key"):
        check_pseudonym_keys(())
    with pytest.raises(KeyStoreError, match="version 2 where version 1"):
        check_pseudonym_keys((two,))
    with pytest.raises(KeyStoreError, match="not retired"):
        check_pseudonym_keys((one, two))
    with pytest.raises(KeyStoreError, match="newest pseudonym key"):
        check_pseudonym_keys((PseudonymKey(1, bytes(32), T0, retired=T0),))
    with pytest.raises(KeyStoreError, match="no active"):
        active_key((PseudonymKey(1, bytes(32), T0, retired=T0),))


def test_rotated_retires_the_active_key_and_adds_the_next_version():
    later = T0 + timedelta(days=30)
    ring = rotated((PseudonymKey(1, bytes(32), T0),), bytes([7]) * 32, later)
    check_pseudonym_keys(ring)
    assert [(k.version, k.retired) for k in ring] == [(1, later), (2, None)]
    assert active_key(ring).secret == bytes([7]) * 32
    assert ring[1].created == later


def test_signing_key_signs_verifiably(store):
    signing = store.signing_key()
    signature = signing.sign(b"checkpoint 42")
    public = load_pem_public_key(signing.public_key_pem().encode())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(signature, b"checkpoint 42")
    assert signing.public().public_key_pem() == signing.public_key_pem()
    assert (
        signing.fingerprint() == "sha256:" + hashlib.sha256(signing.public_key_bytes()).hexdigest()
    )


def test_signing_key_id_is_derived_from_the_public_key():
    key = SigningKey.from_private_bytes(bytes(range(32)), T0)
    assert key.key_id == signing_key_id(key.public_key_bytes())
    assert key.key_id.startswith("ed25519-")
    with pytest.raises(KeyStoreError, match="32 raw"):
        SigningKey(key_id="k", private_bytes=b"x", created=T0)
