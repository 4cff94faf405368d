"""TEST keys (derived from the public demo seed) count only in demo mode, everywhere.

They are recognised from the key itself, whatever the id or comment says; outside demo mode
the checker refuses a registration and the keyring ignores one, so a signal signed with a
TEST key is refused. The demo's own registrations live in ``covenants/demo/``, which only
demo mode reads, and that file may hold nothing but TEST keys.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from services.config import ROOT
from services.core.covenant.checker import check
from services.core.covenant.compiler import compile_policy
from services.core.covenant.demo_overlay import parse_demo_keys
from services.core.covenant.keyring import Keyring
from services.core.covenant.loader import load_files
from services.core.demo_keys import (
    DEMO_PARTNERS,
    demo_key_id,
    demo_private_key,
    demo_public_key,
)
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.core.signing import public_key_base64, sign
from tests.core.builders import (
    ANOMALY_RULE,
    NOW,
    REFERENCE,
    REGISTRY,
    TODAY,
    anomaly,
    checked,
    covenant_text,
    keys,
    load_texts,
)
from tests.core.test_signing import LIANDER_OLD, PWN, keys_yaml


def with_liander_key(key_id: str, ed25519: str) -> str:
    """The test covenant with Liander registering ``ed25519`` under ``key_id``."""
    text = covenant_text(ANOMALY_RULE, signatures="required")
    pwn = keys_yaml(("pwn-1", PWN, None, None))
    text = text.replace(
        "pwn: {name: PWN, kind: water, roles: [supplier]}",
        f"pwn: {{name: PWN, kind: water, roles: [supplier], {pwn}}}",
    )
    return text.replace(
        "liander: {name: Liander, kind: energy, roles: [supplier]}",
        "liander: {name: Liander, kind: energy, roles: [supplier], "
        f'public_keys: [{{id: {key_id}, ed25519: "{ed25519}"}}]}}  # a real key, honestly',
    )


def test_a_test_key_under_an_innocent_id_is_an_error_outside_demo_mode():
    text = with_liander_key("liander-2026", demo_public_key("liander"))
    result = checked(text)
    [error] = result.errors
    assert "'liander-2026' of 'liander' is its TEST key" in error.message
    assert "a hub not in demo mode refuses it" in error.message
    assert "schakel keys partner liander" in error.hint
    assert error.line == next(n for n, ln in enumerate(text.splitlines(), 1) if "liander:" in ln)


def test_another_partners_test_key_is_recognised_too():
    [error] = checked(with_liander_key("liander-2026", demo_public_key("pwn"))).errors
    assert "is the TEST key derived for 'pwn'" in error.message


@pytest.mark.parametrize(
    "name",
    [
        "hhnk",  # a demo partner no covenant of this set names
        "schakel",  # the hub's own demo identity
        "liander-2026",  # the key id the registration itself carries
        "demo-liander",
        "Liander",  # the party's display name
        "covenant-x",  # the covenant's id
        *DEMO_PARTNERS,
    ],
)
def test_a_test_key_is_recognised_whatever_name_it_was_derived_for(name: str):
    """The repro: the TEST key of ``hhnk``, ``schakel`` or ``liander-2026`` registered for
    Liander passed the check outside demo mode, because only the parties of the loaded set
    were derived."""
    text = with_liander_key("liander-2026", demo_public_key(name))
    text = text.replace("covenant: test-covenant", "covenant: covenant-x", 1)
    result = checked(text)
    [error] = [e for e in result.errors if "TEST key" in e.message]
    assert "a hub not in demo mode refuses it" in error.message
    [item] = load_texts(text).covenants
    assert Keyring([item.covenant]).partner("liander", TODAY).keys == {}


def test_the_built_in_demo_partners_are_those_of_the_demo_key_file():
    path = ROOT / "covenants" / "demo" / "keys.yaml"
    registered, problems = parse_demo_keys(path.read_text(), str(path))
    assert problems == [] and set(registered) == set(DEMO_PARTNERS)


def test_in_demo_mode_a_test_key_in_a_covenant_file_is_a_loud_warning():
    loaded = load_texts(with_liander_key("liander-2026", demo_public_key("liander")))
    loaded.demo = True
    result = check(loaded, REGISTRY, REFERENCE, today=TODAY)
    assert result.ok
    [warning] = result.problems
    assert warning.severity == "warning"
    assert "a deployment would load it" in warning.message
    assert "covenants/demo/keys.yaml" in warning.hint


def test_a_real_key_is_no_test_key():
    real = public_key_base64(LIANDER_OLD.public_key())
    assert checked(with_liander_key("liander-2026", real)).errors == []


def test_a_keyring_outside_demo_mode_ignores_a_test_key_that_slipped_in():
    text = with_liander_key("liander-2026", demo_public_key("liander"))
    [item] = load_texts(text).covenants
    deployed = Keyring([item.covenant])
    assert deployed.partner("liander", TODAY).keys == {}
    demo = Keyring([item.covenant], test_keys=True)
    assert set(demo.partner("liander", TODAY).keys) == {"liander-2026"}
    assert set(deployed.partner("pwn", TODAY).keys) == {"pwn-1"}  # real keys unaffected


def test_a_policy_compiled_outside_demo_mode_refuses_a_test_signed_signal():
    text = with_liander_key("liander-2026", demo_public_key("liander"))
    loaded = load_texts(text)
    loaded.demo = True  # compiled in demo mode it verifies ...
    demo = compile_policy(
        check(loaded, REGISTRY, REFERENCE, today=TODAY), REGISTRY, Pseudonymiser(keys())
    )
    signed = orjson.dumps(sign(anomaly(), demo_private_key("liander"), "liander-2026"))
    assert process(signed, REGISTRY, demo, NOW).rejection is None
    # ... and a result that (wrongly) reached the compiler outside demo mode still refuses it
    result = checked(text)
    result.problems.clear()
    deployed = compile_policy(result, REGISTRY, Pseudonymiser(keys()))
    outcome = process(signed, REGISTRY, deployed, NOW)
    assert outcome.rejection is not None and outcome.rejection.code == "unknown_key"


def test_the_shipped_covenants_register_no_key_and_the_demo_folder_only_test_keys():
    deployed = load_files([ROOT / "covenants"])
    assert not deployed.demo and deployed.demo_key_files == []
    assert all(
        not party.public_keys
        for item in deployed.covenants
        for party in item.covenant.parties.values()
    )
    demo = load_files([ROOT / "covenants"], demo=True)
    assert demo.demo_key_files == [str(ROOT / "covenants" / "demo" / "keys.yaml")]
    for item in demo.covenants:
        for partner, party in item.covenant.parties.items():
            for key in party.public_keys:
                assert (key.id, key.ed25519) == (demo_key_id(partner), demo_public_key(partner))
                assert (partner, key.id) in item.demo_keys
    result = check(demo, REGISTRY, REFERENCE, today=TODAY)
    assert result.ok and not [p for p in result.problems if "key" in p.message], [
        str(p) for p in result.problems
    ]


def test_the_demo_key_file_refuses_a_real_key_and_a_foreign_id():
    real = public_key_base64(PWN.public_key())
    text = (
        "demo_keys:\n"
        f'  liander: {{id: demo-liander, ed25519: "{real}"}}\n'
        f'  pwn: {{id: demo-liander, ed25519: "{demo_public_key("pwn")}"}}\n'
        f'  hvc: {{id: demo-hvc, ed25519: "{demo_public_key("hvc")}"}}\n'
    )
    found, problems = parse_demo_keys(text, "keys.yaml")
    assert set(found) == {"hvc"}
    by_line = {p.line: p.message for p in problems}
    assert "is not its TEST key" in by_line[2]
    assert "must have the id 'demo-pwn'" in by_line[3]


def test_a_test_key_pasted_into_a_copied_covenant_set_fails_the_check(tmp_path: Path):
    """The attack of issue 11 item 12: demo registrations in what a deployment loads."""
    folder = tmp_path / "covenants"
    shutil.copytree(ROOT / "covenants", folder)
    shutil.rmtree(folder / "demo")
    path = folder / "nh-drugsalert" / "2025.1.yaml"
    text = path.read_text(encoding="utf-8")
    party = "    name: Chemicaliënhandel Noord-Holland (melder ongebruikelijke transacties)\n"
    assert text.count(party) == 1
    pasted = f'    public_keys: [{{id: chem-1, ed25519: "{demo_public_key("chemiehandel-nh")}"}}]\n'
    path.write_text(text.replace(party, party + pasted), encoding="utf-8")
    result = check(load_files([folder]), REGISTRY, REFERENCE, today=TODAY)
    assert not result.ok
    assert any("TEST key" in p.message and p.file == str(path) for p in result.errors)


@pytest.mark.parametrize("partner", ["liander", "gemeente-alkmaar", "schakel"])
def test_demo_key_ids_are_unique_per_partner(partner: str):
    assert demo_key_id(partner) == f"demo-{partner}"
    with pytest.raises(ValueError, match="too long"):
        demo_key_id("x" * 60)
