"""``schakel replay`` checks batch signatures as the router does: a batch-signed file replays
with each audit record carrying the proof of its signal, and attacks become dead letters."""

from __future__ import annotations

import orjson
from typer.testing import CliRunner

from services.cli.main import app
from services.core.batch_signing import sign_batch
from services.core.signature_proof import check
from services.demo.keys import DemoSigner, demo_private_key
from tests.core.test_signing import MALLORY
from tests.router.helpers import traffic


def test_replay_of_batch_signed_signals(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    plain = [
        {k: v for k, v in e.items() if k != "signature"}
        for e in traffic(80)
        if e["source"] == "liander"
    ]
    signed = DemoSigner().sign_batch(plain)
    forged = sign_batch(plain[:2], MALLORY, "demo-liander")
    tampered = dict(signed[1], data=dict(signed[1]["data"], score=0.01))
    lines = [*signed, *forged, tampered]
    source = tmp_path / "signals.jsonl"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            *("replay", "--demo", "--input", str(source), "--out", str(out)),
            *("--at", "2026-11-22T12:00:00Z"),
        ],
    )
    assert result.exit_code == 0, result.output
    dead = [orjson.loads(x) for x in (out / "dead-letters.jsonl").read_bytes().splitlines()]
    assert [d["code"] for d in dead] == ["bad_batch_root", "bad_batch_root", "bad_inclusion_path"]
    audit = [orjson.loads(x) for x in (out / "audit.jsonl").read_bytes().splitlines()]
    decided = [a for a in audit if a["action"] != "reject"]
    assert {a["signal_id"] for a in decided} == {e["id"] for e in signed}
    public = demo_private_key("liander").public_key()
    by_id = {e["id"]: e for e in signed}
    for record in decided:
        proven = check(record["partner_signature"], public, envelope=by_id[record["signal_id"]])
        assert proven.ok and proven.content
        assert record["partner_signature"]["size"] == len(signed)
