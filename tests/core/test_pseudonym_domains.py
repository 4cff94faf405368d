"""Reserved pseudonym domains (issue 11, item 5): no covenant/recipient pair can derive the keys
of a hub-internal domain, whatever their names; keys made before the separation keep their
pseudonyms (and so the subject index, stacking state and re-identification) working."""

from __future__ import annotations

import base64
import hmac
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from services.core.covenant.model import SLUG
from services.core.keys import DERIVATION, LEGACY_DERIVATION, PseudonymKey
from services.core.pseudonyms import (
    INTERNAL,
    RESERVED_COVENANT_IDS,
    Domain,
    PseudonymError,
    Pseudonymiser,
)
from services.core.stacking.evidence import LOCATOR
from services.keys import default_signing_key_path
from services.keys.file_store import FileKeyStore
from services.keys.signing_file import SigningKeyFile
from services.keys.testing import MemoryKeyStore
from tests.core.builders import ANOMALY_RULE, checked, covenant_text

INTERNAL_DOMAINS = (INTERNAL, LOCATOR)
T0 = datetime(2025, 3, 1, tzinfo=UTC)
SECRET = bytes(range(32))
EAN = "871685900000000011"

slugs = st.one_of(
    st.sampled_from(["hub", "internal", "stacking-locator", "riec-nh"]),
    st.from_regex(SLUG, fullmatch=True),
)


def store_with(derivation: int) -> MemoryKeyStore:
    key = PseudonymKey(1, SECRET, T0, derivation=derivation)
    return MemoryKeyStore((key,), MemoryKeyStore.for_tests().signing_key())


STORES = {d: store_with(d) for d in (LEGACY_DERIVATION, DERIVATION)}


def legacy_internal(secret: bytes, value: str) -> str:
    """INTERNAL's pseudonym as every Schakel before the separation made it."""
    info = b"schakel/pseudonym/v1|hub|internal|hmac"
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)
    digest = hmac.digest(key, f"ean\x1f{value}".encode(), "sha256")[:16]
    return "p1." + base64.b32encode(digest).decode().rstrip("=").lower()


@given(covenant=slugs, recipient=slugs, reversible=st.booleans())
def test_no_covenant_recipient_pair_collides_with_an_internal_domain(
    covenant, recipient, reversible
):
    if covenant in RESERVED_COVENANT_IDS:
        with pytest.raises(PseudonymError, match="reserved"):
            Domain(covenant, recipient, reversible)
        return
    domain = Domain(covenant, recipient, reversible)
    for derivation, store in STORES.items():
        pz = Pseudonymiser(store, cache_size=0)
        for internal in INTERNAL_DOMAINS:
            assert domain != internal
            assert domain.label(derivation) != internal.label(derivation)
            assert pz.pseudonym(domain, "ean", EAN) != pz.pseudonym(internal, "ean", EAN)


@given(covenant=slugs, recipient=slugs)
def test_separated_labels_cannot_be_spelled_by_any_covenant_pair(covenant, recipient):
    """Under the current scheme the separation holds by construction, even for the reserved
    id: a covenant label starts with another prefix, and '|' cannot occur in a name."""
    covenant_label = f"schakel/pseudonym/v1|{covenant}|{recipient}"  # Domain.label's form
    for internal in INTERNAL_DOMAINS:
        assert internal.label(DERIVATION).startswith("schakel/hub-internal/v1|")
        assert internal.label(DERIVATION) != covenant_label


def test_the_exploit_of_the_issue_is_refused_by_the_checker():
    text = covenant_text(ANOMALY_RULE.replace("to: [riec-nh]", "to: [internal]"), covenant="hub")
    text = text.replace(
        "  riec-nh: {", "  internal: {name: X, kind: riec, roles: [recipient]}\n  riec-nh: {"
    )
    problems = [p for p in checked(text).errors if "reserved" in p.message]
    assert len(problems) == 1
    assert problems[0].line == 1 and "another id" in problems[0].hint


def test_internal_domains_are_built_as_such():
    assert INTERNAL.internal and LOCATOR.internal
    assert str(INTERNAL) == "hub/internal"
    with pytest.raises(PseudonymError, match="reserved"):
        Domain("hub", "internal", reversible=False)
    with pytest.raises(PseudonymError, match="internal pseudonym domain"):
        Domain("other", "internal", reversible=False, internal=True)


def test_a_legacy_key_keeps_every_pseudonym_it_made():
    """Changing a label changes pseudonyms, so a key made before the separation derives as
    before: stored subject pseudonyms and locator tokens stay valid."""
    legacy = Pseudonymiser(STORES[LEGACY_DERIVATION])
    current = Pseudonymiser(STORES[DERIVATION])
    assert legacy.pseudonym(INTERNAL, "ean", EAN) == legacy_internal(SECRET, EAN)
    assert current.pseudonym(INTERNAL, "ean", EAN) != legacy_internal(SECRET, EAN)
    covenant = Domain("drugslocaties-nh", "riec-nh", reversible=True)
    # covenant domains derive the same way under both schemes: recipients' pseudonyms hold
    assert legacy.pseudonym(covenant, "ean", EAN) == current.pseudonym(covenant, "ean", EAN)
    token = legacy.pseudonym(LOCATOR, "address", "1811AB 12A")
    assert legacy.reidentify(LOCATOR, token) == ("address", "1811AB 12A")


def test_a_legacy_key_file_is_read_rotated_and_written_without_losing_history(tmp_path):
    path = tmp_path / "keys.json"
    FileKeyStore.create(path)
    document = json.loads(path.read_text())
    document["format_version"] = 1  # as written before the scheme was recorded
    for key in document["pseudonym_keys"]:
        del key["derivation"]
    signing = SigningKeyFile.open(default_signing_key_path(path)).signing_key()
    del document["signing_keys"]  # version 1 kept the private signing key in this file
    document["signing_key"] = {
        "key_id": signing.key_id,
        "private_key": base64.b64encode(signing.private_bytes).decode(),
        "created": signing.created.isoformat(),
    }
    path.write_text(json.dumps(document))
    path.chmod(0o600)
    store = FileKeyStore.open(path)
    [old] = store.pseudonym_keys()
    assert old.derivation == LEGACY_DERIVATION
    pz = Pseudonymiser(store)
    subject = pz.pseudonym(INTERNAL, "ean", EAN)
    assert subject == legacy_internal(old.secret, EAN)
    locator = pz.pseudonym(LOCATOR, "address", "1811AB 12A")

    store.rotate_pseudonym_key()
    rotated = FileKeyStore.open(path)
    assert [k.derivation for k in rotated.pseudonym_keys()] == [LEGACY_DERIVATION, DERIVATION]
    written = json.loads(path.read_text())
    assert written["format_version"] == 3
    assert [k["derivation"] for k in written["pseudonym_keys"]] == [1, 2]
    after = Pseudonymiser(rotated)
    # a subject look-up searches every version: the stored legacy pseudonym is still found
    assert after.all_pseudonyms(INTERNAL, "ean", EAN)[0] == subject
    assert after.pseudonym(INTERNAL, "ean", EAN) not in (subject,)
    # an open alert's locator token, made under the legacy key, still resolves
    assert after.reidentify(LOCATOR, locator) == ("address", "1811AB 12A")
