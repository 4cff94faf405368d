"""``schakel keys partner`` and ``schakel publish --sign-with``."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import orjson
import pytest
import yaml
from typer.testing import CliRunner

from services.cli import keys as keys_cli
from services.cli import publish as publish_cli
from services.cli.main import app
from services.cli.partner_key import read_partner_key
from services.core.errors import KeyStoreError
from services.core.signing import canonical_envelope, parse_signature, verifies
from tests.core.builders import ANOMALY_RULE, anomaly, checked, covenant_text

runner = CliRunner()


def make_key(out: Path, *args: str) -> tuple[Path, str]:
    result = runner.invoke(keys_cli.app, ["partner", "liander", "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    [path] = out.glob("liander.*.key")
    return path, result.stdout


def test_partner_key_file_is_private_and_only_the_public_block_is_printed(tmp_path: Path):
    path, output = make_key(
        tmp_path / "keys", "--key-id", "liander-1", "--valid-from", "2026-01-01"
    )
    assert path.name == "liander.liander-1.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = orjson.loads(path.read_bytes())["private_key"]
    assert secret not in output and base64.b64decode(secret).hex() not in output
    key = read_partner_key(path)
    assert (key.partner, key.key_id) == ("liander", "liander-1")
    block = output.split("next to any current key:\n", 1)[1]
    [entry] = yaml.safe_load(block)["public_keys"]
    assert entry["ed25519"] == key.public_base64
    assert str(entry["valid_from"]) == "2026-01-01"


def test_the_printed_block_pasted_into_a_covenant_checks_clean(tmp_path: Path):
    _, output = make_key(tmp_path, "--key-id", "liander-1", "--valid-from", "2026-01-01")
    block = output.split("next to any current key:\n", 1)[1].rstrip("\n")
    text = covenant_text(ANOMALY_RULE, signatures="required")
    pasted = "\n".join("  " + line[2:] for line in block.splitlines() if line.strip())
    text = text.replace(
        "liander: {name: Liander, kind: energy, roles: [supplier]}",
        "liander:\n    name: Liander\n    kind: energy\n    roles: [supplier]\n" + pasted,
    )
    problems = [str(p) for p in checked(text).problems]
    assert problems and all("'pwn'" in p for p in problems)  # only pwn still lacks a key


def test_partner_key_refuses_to_overwrite_and_bad_names(tmp_path: Path):
    make_key(tmp_path, "--key-id", "liander-1")
    again = runner.invoke(
        keys_cli.app, ["partner", "liander", "--out", str(tmp_path), "--key-id", "liander-1"]
    )
    assert again.exit_code == 1 and "refusing to overwrite" in again.stderr
    for args in (["Liander"], ["liander", "--key-id", "a:b"], ["liander", "--valid-from", "x"]):
        bad = runner.invoke(keys_cli.app, ["partner", *args, "--out", str(tmp_path)])
        assert bad.exit_code == 2


def test_a_key_file_others_can_read_is_refused(tmp_path: Path):
    path, _ = make_key(tmp_path)
    path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        read_partner_key(path)
    path.chmod(0o600)
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(KeyStoreError, match="not a partner key file"):
        read_partner_key(path)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[bytes]]]:
    """What publish hands to the producer (the broker path is tested in tests/router)."""
    calls: list[tuple[str, list[bytes]]] = []

    async def capture(partner: str, values: list[bytes]) -> None:
        calls.append((partner, values))

    monkeypatch.setattr(publish_cli, "_send", capture)
    return calls


def registered(tmp_path: Path, printed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the hub's covenants (SCHAKEL_COVENANTS) one that registers the printed key."""
    block = printed.split("next to any current key:\n", 1)[1].rstrip("\n")
    pasted = "\n".join("  " + line[2:] for line in block.splitlines() if line.strip())
    text = covenant_text(ANOMALY_RULE).replace(
        "liander: {name: Liander, kind: energy, roles: [supplier]}",
        "liander:\n    name: Liander\n    kind: energy\n    roles: [supplier]\n" + pasted,
    )
    folder = tmp_path / "covenants"
    folder.mkdir()
    (folder / "test.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("SCHAKEL_COVENANTS", str(folder))


def test_publish_signs_each_line_with_the_key_file(tmp_path: Path, sent, monkeypatch):
    key_path, printed = make_key(tmp_path, "--key-id", "liander-1")
    registered(tmp_path, printed, monkeypatch)
    key = read_partner_key(key_path)
    signals = tmp_path / "signals.jsonl"
    good = [anomaly(signal_id=f"s-{i}") for i in range(3)]
    signals.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in good) + b"{broken\n")
    args = ["publish", str(signals), "--as", "liander", "--sign-with", str(key_path)]
    result = runner.invoke(app, [*args, "--single-signatures"])
    assert result.exit_code == 1  # the broken line was refused
    assert "line 4: not sent" in result.stderr
    [(partner, values)] = sent
    assert partner == "liander" and len(values) == 3
    for original, value in zip(good, values, strict=True):
        envelope = orjson.loads(value)
        key_id, signature = parse_signature(envelope["signature"])
        assert key_id == "liander-1"
        assert canonical_envelope(envelope) == canonical_envelope(original)
        assert verifies(key.private_key.public_key(), signature, canonical_envelope(original))


def test_publish_refuses_another_partners_key_and_warns_about_unsigned(
    tmp_path: Path, sent, monkeypatch
):
    key_path, _ = make_key(tmp_path)
    signals = tmp_path / "signals.jsonl"
    signals.write_bytes(orjson.dumps(anomaly(source="pwn")) + b"\n")
    wrong = runner.invoke(
        app, ["publish", str(signals), "--as", "pwn", "--sign-with", str(key_path)]
    )
    assert wrong.exit_code == 2 and "belongs to partner 'liander'" in wrong.output
    assert sent == []
    signals.write_bytes(orjson.dumps(anomaly()) + b"\n")
    required = runner.invoke(app, ["publish", str(signals), "--as", "liander"])
    assert required.exit_code == 1, "the shipped covenants make liander sign"
    assert "line 1: not sent: " in required.stderr and "[unsigned]" in required.stderr
    assert sent == []
    optional = tmp_path / "optional"
    optional.mkdir()
    (optional / "test.yaml").write_text(covenant_text(ANOMALY_RULE), encoding="utf-8")
    monkeypatch.setenv("SCHAKEL_COVENANTS", str(optional))
    unsigned = runner.invoke(app, ["publish", str(signals), "--as", "liander"])
    assert unsigned.exit_code == 0
    assert "1 signal(s) were sent unsigned" in unsigned.stderr
