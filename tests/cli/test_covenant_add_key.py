"""A new partner gets going: key pair, registration in the covenant, confirmation, publishing.

``schakel keys partner`` writes the key pair and prints the commands; each is run here as
printed (only the COVENANT_FILE placeholder filled in). ``schakel covenant add-key`` keeps every
other line of the file, checks, and undoes an edit that does not check clean; ``schakel keys
verify`` answers with the router's own keyring. ``schakel publish --demo-key`` signs as a demo
partner, and only a hub in demo mode lets it.
"""

from __future__ import annotations

import difflib
import functools
import os
import shlex
import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.cli import key_verify
from services.cli import publish as publish_cli
from services.cli.main import app
from services.config import ROOT
from services.core.batch_signing import sign_batch
from services.core.covenant.key_edit import KeyEditError, add_key_text
from services.core.demo_keys import demo_private_key, demo_public_key
from services.hub.state import HubState
from tests.core.builders import anomaly

runner = CliRunner()
COVENANT = Path("covenants") / "drugslocaties-nh" / "2025.1.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder with a copy of covenants/, the hub's covenant set, not in demo mode."""
    shutil.copytree(ROOT / "covenants", tmp_path / "covenants")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHAKEL_COVENANTS", str(tmp_path / "covenants"))
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCHAKEL_DEMO", raising=False)
    monkeypatch.delenv("SCHAKEL_KAFKA_BOOTSTRAP", raising=False)
    return tmp_path


def schakel(command: str) -> tuple[int, str, str]:
    args = shlex.split(command)
    assert args[0] == "schakel"
    result = runner.invoke(app, args[1:])
    # usage errors come in a Rich box, wrapped: compare their words
    return result.exit_code, result.stdout, " ".join(result.stderr.replace("│", " ").split())


def test_the_commands_keys_partner_prints_register_and_confirm_the_key(workdir: Path):
    code, out, _ = schakel(
        "schakel keys partner liander --key-id liander-2026 --valid-from 2026-11-01 --out keys"
    )
    assert code == 0, out
    printed = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("schakel ")]
    assert printed == [
        "schakel covenant add-key COVENANT_FILE liander --key keys/liander.liander-2026.pub",
        "schakel keys verify keys/liander.liander-2026.pub",
    ]
    assert (workdir / "keys" / "liander.liander-2026.pub").exists()
    before = (workdir / COVENANT).read_text(encoding="utf-8")

    code, out, err = schakel(printed[1] + " --today 2026-11-22")
    assert code == 1 and "no covenant version in force" in err and "unknown_key" in err

    code, out, err = schakel(printed[0].replace("COVENANT_FILE", str(COVENANT)))
    assert code == 0, out + err
    assert "registered key 'liander-2026' of 'liander'" in out and "checks clean" in out
    after = (workdir / COVENANT).read_text(encoding="utf-8")
    changes = [
        ln for ln in difflib.ndiff(before.splitlines(), after.splitlines()) if ln[:1] in "+-"
    ]
    assert changes == [
        "+     public_keys:",
        "+       - id: liander-2026",
        f'+         ed25519: "{orjson.loads((workdir / "keys" / "liander.liander-2026.pub").read_bytes())["public_key"]}"',
        "+         valid_from: 2026-11-01",
    ]  # every comment and every other line kept

    code, out, err = schakel(printed[1] + " --today 2026-11-22")
    assert code == 0, err
    assert "OK: 'liander-2026' of 'liander' is registered and valid on 2026-11-22" in out
    # the partner's own private key file: a probe signed with it passes the router's check
    code, out, err = schakel("schakel keys verify keys/liander.liander-2026.key --today 2026-11-22")
    assert code == 0, err
    # the probe includes a signed batch: a batch the router refuses makes verify refuse
    with pytest.MonkeyPatch.context() as patch:
        forged = functools.partial(sign_batch, private_key=demo_private_key("pwn"))
        patch.setattr(
            key_verify, "sign_batch", lambda envelopes, _, key_id: forged(envelopes, key_id=key_id)
        )
        code, out, err = schakel(
            "schakel keys verify keys/liander.liander-2026.key --today 2026-11-22"
        )
    assert code == 1 and "[bad_batch_root]" in err, err
    code, out, err = schakel(printed[1] + " --today 2026-10-31")
    assert code == 1 and "not valid on 2026-10-31" in err


def test_add_key_refuses_a_private_key_file_and_a_key_of_another_partner(workdir: Path):
    schakel("schakel keys partner pwn --key-id pwn-1 --out keys")
    code, _, err = schakel(f"schakel covenant add-key {COVENANT} pwn --key keys/pwn.pwn-1.key")
    assert code == 2 and "PRIVATE key file" in err
    code, _, err = schakel(f"schakel covenant add-key {COVENANT} liander --key keys/pwn.pwn-1.pub")
    assert code == 2 and "is a key of 'pwn', not of 'liander'" in err


def test_add_key_undoes_an_edit_that_does_not_check_clean(workdir: Path):
    """Registering a TEST key as a real one outside demo mode: refused, file unchanged."""
    public = workdir / "liander.demo.pub"
    public.write_bytes(
        orjson.dumps(
            {
                "format": "schakel-partner-public-key/1",
                "partner": "liander",
                "key_id": "liander-2026",
                "algorithm": "ed25519",
                "public_key": demo_public_key("liander"),
                "valid_from": None,
                "valid_until": None,
            }
        )
    )
    before = (workdir / COVENANT).read_bytes()
    code, out, err = schakel(f"schakel covenant add-key {COVENANT} liander --key {public}")
    assert code == 1 and "TEST key" in out and "left unchanged" in err
    assert (workdir / COVENANT).read_bytes() == before


def test_add_key_appends_to_an_existing_list_and_refuses_flow_style():
    text = (
        "covenant: x  # keep me\n"
        "parties:\n"
        "  liander:\n"
        "    name: Liander\n"
        "    public_keys:   # the keys\n"
        "      - {id: old, ed25519: 'AAA='}  # the old one\n"
        "\n"
        "  # the recipient\n"
        "  riec-nh: {name: RIEC, kind: riec, roles: [recipient]}\n"
    )
    edited = add_key_text(text, "liander", "new", "BBB=")
    assert edited == text.replace(
        "  # the old one\n", '  # the old one\n      - id: new\n        ed25519: "BBB="\n'
    )
    with pytest.raises(KeyEditError, match="flow style"):
        add_key_text(text, "riec-nh", "k", "CCC=")
    with pytest.raises(KeyEditError, match="no 'nobody'"):
        add_key_text(text, "nobody", "k", "CCC=")


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[bytes]]]:
    calls: list[tuple[str, list[bytes]]] = []

    async def capture(partner: str, values: list[bytes]) -> None:
        calls.append((partner, values))

    monkeypatch.setattr(publish_cli, "_send", capture)
    return calls


def test_publish_demo_key_signs_as_the_demo_partner_only_for_a_hub_in_demo_mode(
    workdir: Path, sent: list[tuple[str, list[bytes]]]
):
    signals = workdir / "liander.jsonl"
    signals.write_bytes(orjson.dumps(anomaly()) + b"\n")
    command = f"schakel publish --as liander --demo-key {signals}"
    code, _, err = schakel(command)
    assert code == 2 and "not in it" in err and "schakel up --demo" in err
    assert sent == []

    state = workdir / "state" / "hub.json"
    HubState("127.0.0.1:9092", "sqlite://", os.getpid(), demo=True).write(state)
    code, _, err = schakel(command)
    assert code == 0, err
    [(partner, [value])] = sent
    envelope = orjson.loads(value)
    assert partner == "liander" and envelope["signature"].startswith("ed25519-merkle:demo-liander:")
    # a batch of one, signed with the TEST key (Ed25519 is deterministic)
    assert envelope == sign_batch([anomaly()], demo_private_key("liander"), "demo-liander")[0]

    HubState("127.0.0.1:9092", "sqlite://", os.getpid(), demo=False).write(state)
    assert schakel(command)[0] == 2  # the same hub restarted without --demo


def test_publish_refuses_a_key_file_holding_a_test_key_outside_demo_mode(
    workdir: Path, sent: list[tuple[str, list[bytes]]]
):
    from datetime import date

    from services.cli.partner_key import PartnerKey, write_partner_key

    path = write_partner_key(
        workdir, PartnerKey("liander", "liander-1", demo_private_key("liander")), date(2026, 1, 1)
    )
    signals = workdir / "liander.jsonl"
    signals.write_bytes(orjson.dumps(anomaly()) + b"\n")
    code, _, err = schakel(f"schakel publish --as liander --sign-with {path} {signals}")
    assert code == 2 and "TEST key" in err
    assert sent == []


def test_add_key_shows_only_what_concerns_the_key_added_and_counts_the_rest(workdir: Path):
    """The covenant's other suppliers have no key (warnings of the file, not of this key):
    one summary line with the command that shows them, not a warning per supplier."""
    schakel("schakel keys partner liander --key-id liander-2026 --valid-from 2026-11-01 --out k")
    code, out, err = schakel(
        f"schakel covenant add-key {COVENANT} liander --key k/liander.liander-2026.pub"
    )
    assert code == 0, out + err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert not [ln for ln in lines if ": warning: " in ln and "'liander'" not in ln], out
    summary = [ln for ln in lines if "other warning(s)" in ln]
    assert len(summary) == 1 and "schakel covenant check" in summary[0], out
    assert int(summary[0].split()[0]) >= 1
    assert len(lines) <= 4, out
