"""The per-signal hot path's shortcuts give exactly what the plain computation gives."""

from __future__ import annotations

import pickle
import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from services.core.covenant.transforms import generaliser, parse_share
from services.core.decision import EXCHANGE_NAMESPACE, exchange_id, rejection_id
from services.core.pseudonyms import INTERNAL, Domain, Pseudonymiser
from services.keys.testing import MemoryKeyStore
from tests.core.builders import ANOMALY_RULE, NOW, anomaly, covenant_text, policy, signal

POLICE = Domain("nh-drugs-2025", "politie-nh", reversible=False)
RIEC = Domain("nh-drugs-2025", "riec-nh", reversible=True)
texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)


# -- pseudonym cache -------------------------------------------------------------------------


@given(domain=st.sampled_from([INTERNAL, POLICE, RIEC]), kind=st.sampled_from(["ean", "address"]))
def test_cached_and_uncached_pseudonyms_are_equal(domain, kind):
    store = MemoryKeyStore.for_tests()
    cached, uncached = Pseudonymiser(store), Pseudonymiser(store, cache_size=0)
    for value in ("871685900000000011", "1811AB 12A", "1811AB 12A"):
        assert cached.pseudonym(domain, kind, value) == uncached.pseudonym(domain, kind, value)
    assert cached.cache_info()[0] == 1  # the repeated value came from the cache
    assert uncached.cache_info() == (0, 0, 0)


def test_pseudonym_cache_is_bounded():
    pz = Pseudonymiser(MemoryKeyStore.for_tests(), cache_size=8)
    for n in range(100):
        pz.pseudonym(POLICE, "ean", str(n))
    hits, misses, entries = pz.cache_info()
    assert (hits, misses, entries) == (0, 100, 8)
    pz.clear_cache()
    assert pz.cache_info() == (0, 0, 0)


def test_pseudonym_cache_follows_key_rotation():
    store = MemoryKeyStore.for_tests()
    pz = Pseudonymiser(store)
    before = pz.pseudonym(POLICE, "ean", "871685900000000011")
    store.rotate_pseudonym_key()
    after = pz.pseudonym(POLICE, "ean", "871685900000000011")
    assert before.startswith("p1.")
    assert after.startswith("p2.")
    assert after == Pseudonymiser(store, cache_size=0).pseudonym(
        POLICE, "ean", "871685900000000011"
    )


def test_cache_keeps_domains_apart():
    pz = Pseudonymiser(MemoryKeyStore.for_tests())
    same_names = Domain(POLICE.covenant_id, POLICE.recipient, reversible=True)
    assert pz.pseudonym(POLICE, "ean", "1") != pz.pseudonym(same_names, "ean", "1")
    assert pz.pseudonym(POLICE, "ean", "1") != pz.pseudonym(POLICE, "kvk", "1")


def test_pseudonymiser_repr_shows_no_cached_identifier():
    pz = Pseudonymiser(MemoryKeyStore.for_tests())
    pz.pseudonym(POLICE, "address", "1811AB 12A")
    assert "1811" not in repr(pz)


def test_domain_hash_survives_pickling():
    copy = pickle.loads(pickle.dumps(POLICE))  # noqa: S301 - our own bytes
    assert copy == POLICE
    assert hash(copy) == hash(POLICE)
    assert {copy: 1}[POLICE] == 1


# -- exchange ids ----------------------------------------------------------------------------


@given(source=texts, signal_id=texts, recipient=texts)
def test_exchange_ids_are_uuid5(source, signal_id, recipient):
    expected = uuid.uuid5(EXCHANGE_NAMESPACE, f"{source}\x1f{signal_id}\x1f{recipient}")
    assert exchange_id(source, signal_id, recipient) == str(expected)
    rejected = uuid.uuid5(EXCHANGE_NAMESPACE, f"{source}\x1f{signal_id}\x1frejected")
    assert rejection_id(source, signal_id) == str(rejected)


# -- band generaliser cache ------------------------------------------------------------------


def test_band_cache_keeps_ints_floats_and_signed_zero_apart():
    band = generaliser(parse_share("generalise:band:0.1"))
    assert band(0.0) == band(-0.0) == "[0,0.1)"
    assert band(1) == band(1.0) == "[1,1.1)"
    assert band(0.85) == band(0.85) == "[0.8,0.9)"


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-(10**6), 10**6))
def test_band_is_the_same_on_repeat(value):
    band = generaliser(parse_share("generalise:band:0.25"))
    fresh = generaliser(parse_share("generalise:band:0.25"))
    assert band(value) == band(value) == fresh(value)


# -- policy ----------------------------------------------------------------------------------


def test_one_now_object_and_equal_now_objects_decide_alike():
    compiled = policy(covenant_text(ANOMALY_RULE))
    now_again = datetime(NOW.year, NOW.month, NOW.day, NOW.hour, tzinfo=UTC)
    first = compiled.decide(signal(anomaly()), NOW)
    second = compiled.decide(signal(anomaly()), NOW)
    third = compiled.decide(signal(anomaly()), now_again)
    assert first == second == third
    # a new ``now`` on another day is not served the remembered day
    late = compiled.decide(signal(anomaly()), datetime(2040, 1, 1, tzinfo=UTC))
    assert [d.reason for d in late] != [d.reason for d in first]
