"""``schakel covenant check`` on partner keys and the ``signatures`` setting."""

from __future__ import annotations

from datetime import date

import pytest

from services.core.covenant.checker import CheckResult
from tests.core.builders import ANOMALY_RULE, checked, covenant_text
from tests.core.test_signing import LIANDER_NEW, LIANDER_OLD, PWN, keys_yaml, signed_covenant


def messages(result: CheckResult, severity: str) -> list[str]:
    return [p.message for p in result.problems if p.severity == severity]


def test_registered_keys_and_required_signatures_check_clean():
    result = checked(signed_covenant())
    assert result.problems == []


def test_rotation_with_an_overlap_checks_clean():
    rotation = keys_yaml(
        ("liander-2025", LIANDER_OLD, None, "2026-12-31"),
        ("liander-2026", LIANDER_NEW, "2026-12-01", None),
    )
    assert checked(signed_covenant(liander=rotation)).problems == []


@pytest.mark.parametrize(
    "material",
    ["this is not base64 at all, is it? no!!!!", "AAAA" * 11, "QUFB" * 12],  # 33, 36 bytes
)
def test_key_material_must_be_a_base64_ed25519_public_key(material: str):
    liander = f'public_keys: [{{id: liander-1, ed25519: "{material}"}}]'
    text = signed_covenant(liander=liander)
    result = checked(text)
    assert not result.ok
    [problem] = result.errors
    assert "not a base64 Ed25519 public key" in problem.message
    assert "schakel keys partner liander" in problem.hint
    party_line = next(n for n, ln in enumerate(text.splitlines(), 1) if "liander: {" in ln)
    assert problem.line == party_line  # the key is written inline on the party's line


def test_a_window_that_ends_before_it_starts_is_an_error():
    result = checked(
        signed_covenant(liander=keys_yaml(("liander-1", LIANDER_OLD, "2026-12-01", "2026-11-01")))
    )
    assert any("valid_until lies before valid_from" in m for m in messages(result, "error"))


def test_a_key_id_or_key_listed_twice_is_an_error():
    twice = keys_yaml(
        ("liander-1", LIANDER_OLD, None, None), ("liander-1", LIANDER_NEW, None, None)
    )
    assert any(
        "appears twice" in m for m in messages(checked(signed_covenant(liander=twice)), "error")
    )
    same = keys_yaml(("liander-1", LIANDER_OLD, None, None), ("liander-2", LIANDER_OLD, None, None))
    assert any(
        "repeats a key" in m for m in messages(checked(signed_covenant(liander=same)), "error")
    )


def test_one_key_for_two_partners_is_an_error():
    shared = keys_yaml(("pwn-1", LIANDER_OLD, None, None))
    errors = messages(checked(signed_covenant(pwn=shared)), "error")
    assert errors == ["key 'pwn-1' of 'pwn' is also registered for 'liander'"]


def test_a_key_id_naming_different_keys_in_two_files_is_an_error():
    first = signed_covenant()
    second = signed_covenant(
        covenant="other-covenant", liander=keys_yaml(("liander-1", LIANDER_NEW, None, None))
    )
    errors = messages(checked(first, second), "error")
    assert any("differs from the key of that id" in m for m in errors)


def test_a_gap_between_key_windows_is_a_warning():
    gap = keys_yaml(
        ("liander-2025", LIANDER_OLD, None, "2026-12-31"),
        ("liander-2027", LIANDER_NEW, "2027-02-01", None),
    )
    result = checked(signed_covenant(liander=gap))
    assert result.ok
    assert messages(result, "warning") == [
        "no key of 'liander' is valid from 2027-01-01 to 2027-01-31: its signals are rejected then"
    ]


def test_a_supplier_without_keys_under_required_signatures_is_a_warning():
    result = checked(covenant_text(ANOMALY_RULE, signatures="required"))
    assert result.ok
    warnings = messages(result, "warning")
    assert len(warnings) == 2  # liander and pwn; recipients need no key
    assert all("has no public key, but this covenant requires" in w for w in warnings)
    assert checked(covenant_text(ANOMALY_RULE, signatures="optional")).problems == []


def test_required_is_the_default():
    text = covenant_text(ANOMALY_RULE).replace("signatures: optional\n", "")
    assert "signatures" not in text
    assert len(messages(checked(text), "warning")) == 2


def test_a_supplier_with_no_key_valid_today_is_a_warning():
    expired = keys_yaml(("liander-1", LIANDER_OLD, None, "2026-01-31"))
    result = checked(signed_covenant(liander=expired), today=date(2026, 11, 22))
    assert messages(result, "warning") == [
        "no key of supplier 'liander' is valid today: its signals are rejected"
    ]


def test_unknown_signatures_setting_is_refused():
    result = checked(covenant_text(ANOMALY_RULE, signatures="sometimes"))
    assert not result.ok and not result.covenants


def test_pwn_key_is_fine_alone():
    assert checked(signed_covenant(pwn=keys_yaml(("pwn-2", PWN, "2026-01-01", None)))).ok
