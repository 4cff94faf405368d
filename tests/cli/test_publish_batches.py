"""``schakel publish --sign-with`` signs in batches by default: one root signature per batch,
each line its inclusion path, and the router's own check accepts every line it sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from services.cli import publish as publish_cli
from services.cli.main import app
from services.cli.partner_key import read_partner_key
from services.core.batch_signing import parse_batch
from services.core.covenant.keyring import Keyring
from services.core.pipeline import process
from services.core.signing import public_key_base64
from tests.cli.test_partner_keys_cli import make_key, registered, runner, sent
from tests.core.builders import REGISTRY, anomaly, policy
from tests.core.test_signing import NOW, signed_covenant

__all__ = ["sent"]  # the fixture capturing what publish would send

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def keyrings(monkeypatch: pytest.MonkeyPatch) -> list[Keyring]:
    """The keyring publish checks signatures with, captured."""
    made: list[Keyring] = []
    real = publish_cli._keyring

    def capture(paths: Any) -> Keyring:
        made.append(real(paths))
        return made[-1]

    monkeypatch.setattr(publish_cli, "_keyring", capture)
    return made


def publish(tmp_path: Path, lines: list[bytes], *args: str) -> tuple[int, str, Path]:
    key_path, printed = make_key(tmp_path / "keys", "--key-id", "liander-1")
    with pytest.MonkeyPatch.context() as patch:  # the hub's covenants register the key
        registered(tmp_path, printed, patch)
        return _publish(tmp_path, key_path, lines, *args)


def _publish(
    tmp_path: Path, key_path: Path, lines: list[bytes], *args: str
) -> tuple[int, str, Path]:
    signals = tmp_path / "signals.jsonl"
    signals.write_bytes(b"".join(line + b"\n" for line in lines))
    result = runner.invoke(
        app, ["publish", str(signals), "--as", "liander", "--sign-with", str(key_path), *args]
    )
    return result.exit_code, result.stderr, key_path


def keys_of(key_path: Path) -> str:
    public = public_key_base64(read_partner_key(key_path).private_key.public_key())
    return f'public_keys: [{{id: liander-1, ed25519: "{public}"}}]'


def test_publish_signs_batches_by_default_and_the_router_accepts_each(tmp_path, sent, keyrings):
    lines = [orjson.dumps(anomaly(signal_id=f"s-{n}")) for n in range(7)]
    code, err, key_path = publish(
        tmp_path, [*lines[:3], b"{broken", *lines[3:]], "--batch-size", "3"
    )
    assert code == 1 and "line 4: not sent" in err  # the broken line alone is refused
    [(_, values)] = sent
    envelopes = [orjson.loads(v) for v in values]
    assert [e["id"] for e in envelopes] == [f"s-{n}" for n in range(7)]
    proofs = [parse_batch(e["batch"]) for e in envelopes]
    assert [(p.index, p.size) for p in proofs] == [
        (0, 3),
        (1, 3),
        (2, 3),
        (0, 3),
        (1, 3),
        (2, 3),
        (0, 1),
    ]
    assert len({e["signature"] for e in envelopes}) == 3  # one root signature per batch
    assert all(e["signature"].startswith("ed25519-merkle:liander-1:") for e in envelopes)
    p = policy(signed_covenant(liander=keys_of(key_path)))
    for value in values:
        outcome = process(value, REGISTRY, p, NOW)
        assert outcome.rejection is None, outcome.rejection
    assert p.keyring is not None and p.keyring.roots.verifications == 3
    [checked] = keyrings  # publish checked every line as the router will: once per batch
    assert checked.roots.verifications == 3


def test_single_signatures_on_request(tmp_path, sent):
    lines = [orjson.dumps(anomaly(signal_id=f"s-{n}")) for n in range(3)]
    code, _, key_path = publish(tmp_path, lines, "--single-signatures")
    assert code == 0
    [(_, values)] = sent
    envelopes = [orjson.loads(v) for v in values]
    assert all("batch" not in e and e["signature"].startswith("ed25519:") for e in envelopes)
    p = policy(signed_covenant(liander=keys_of(key_path)))
    assert all(process(v, REGISTRY, p, NOW).rejection is None for v in values)


def test_an_old_proof_on_a_line_is_replaced_not_kept(tmp_path, sent):
    stale = {**anomaly(signal_id="s-1"), "signature": "ed25519:x:" + "A" * 86, "batch": "0:1:x:"}
    code, _, key_path = publish(tmp_path, [orjson.dumps(stale)])
    assert code == 0
    [(_, [value])] = sent
    assert (
        process(value, REGISTRY, policy(signed_covenant(liander=keys_of(key_path))), NOW).rejection
        is None
    )


def test_a_batch_size_beyond_the_limit_is_refused(tmp_path, sent):
    code, _, _ = publish(tmp_path, [orjson.dumps(anomaly())], "--batch-size", "70000")
    assert code == 2 and sent == []


def test_publish_refuses_a_batch_the_hubs_covenants_do_not_register_the_key_of(tmp_path, sent):
    key_path, _ = make_key(tmp_path / "keys", "--key-id", "liander-1")  # not registered
    code, err, _ = _publish(tmp_path, key_path, [orjson.dumps(anomaly(signal_id="s-1"))])
    assert code == 1 and "line 1: not sent" in err and "[unknown_key]" in err
    assert sent == []
