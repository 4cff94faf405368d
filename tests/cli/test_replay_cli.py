"""`schakel replay` on the shipped example traffic, as a newcomer runs it."""

from __future__ import annotations

import re

import orjson
from typer.testing import CliRunner

from services.cli.main import app
from services.config import ROOT

EXAMPLES = ROOT / "examples" / "signals.jsonl"


def test_replay_of_the_examples_writes_feeds_audit_and_dead_letters(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            *("replay", "--demo", "--input", str(EXAMPLES), "--out", str(out)),
            *("--at", "2026-11-22T12:00:00Z"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Decisions per recipient" in result.output and "Dead letters" in result.output
    assert "demo mode: TEST keys are accepted" in result.output
    assert "drugslocaties-nh@2025.1 is an ILLUSTRATION" in result.output

    lines = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    dead = [orjson.loads(x) for x in (out / "dead-letters.jsonl").read_bytes().splitlines()]
    audit = [orjson.loads(x) for x in (out / "audit.jsonl").read_bytes().splitlines()]
    assert len(dead) == 30  # examples/README.md: 30 malformed lines, each with a reason
    assert all(d["code"] and d["reason"] and d["line"] for d in dead)
    assert sum(1 for a in audit if a["action"] == "reject") == len(dead)
    # every accepted signal has at least one decision; each decision has a unique record id
    decided = {a["signal_id"] for a in audit if a["action"] != "reject"}
    assert len(decided) == len(lines) - len(dead)
    assert len({a["record_id"] for a in audit}) == len(audit)

    feeds = {p.stem: p.read_bytes().splitlines() for p in (out / "feeds").glob("*.jsonl")}
    assert {"riec-nh", "politie-nh"} <= set(feeds)
    # the campaign team receives aggregates only (nh-drugsalert `aggregate_only`): no record
    # per tip, delivered or even attempted
    assert "campagneteam-nh" not in feeds
    assert not [a for a in audit if a["recipient"] == "campagneteam-nh"]
    delivered = sum(1 for a in audit if a["result"] == "delivered")
    assert delivered == sum(len(v) for v in feeds.values())

    # no raw identifier from the input reaches the audit log or a feed that pseudonymises it
    eans = set(re.findall(rb'"ean":"([0-9 .-]{18,24})"', EXAMPLES.read_bytes()))
    digits = {re.sub(rb"[^0-9]", b"", e) for e in eans}
    assert digits
    audit_text = (out / "audit.jsonl").read_bytes()
    feed_text = b"".join(b"\n".join(v) for v in feeds.values())
    for ean in digits:
        assert ean not in audit_text
        assert ean not in feed_text


def test_without_demo_mode_the_test_keys_of_the_examples_count_for_nothing(tmp_path, monkeypatch):
    """A hub not in demo mode (how every deployment runs) refuses every TEST-signed signal."""
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    monkeypatch.delenv("SCHAKEL_DEMO", raising=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            *("replay", "--input", str(EXAMPLES), "--out", str(out)),
            *("--at", "2026-11-22T12:00:00Z"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "demo mode: TEST keys are accepted" not in result.output
    dead = [orjson.loads(x) for x in (out / "dead-letters.jsonl").read_bytes().splitlines()]
    lines = [line for line in EXAMPLES.read_bytes().splitlines() if line.strip()]
    assert len(dead) == len(lines)  # 30 malformed, every other one refused for its key
    assert sum(d["code"] == "unknown_key" for d in dead) == len(lines) - 30
    audit = [orjson.loads(x) for x in (out / "audit.jsonl").read_bytes().splitlines()]
    assert not any(a["result"] == "delivered" for a in audit)


def test_replay_refuses_covenants_with_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("covenant: x\nversion: '1'\n")
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "--input",
            str(EXAMPLES),
            "--out",
            str(tmp_path / "o"),
            "--covenants",
            str(broken),
        ],
    )
    assert result.exit_code == 1
    assert "required key is missing" in result.output
