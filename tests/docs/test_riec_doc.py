"""docs/riec.md is tested: its hand-over signal is a valid one the shipped covenant routes to
the mayor, its rule is the shipped rule, its tables are the code's, its commands print what it
says, and its screenshots exist."""

from __future__ import annotations

import re
import shlex
import shutil
from datetime import UTC, datetime

import orjson
from typer.testing import CliRunner

from services.cli.main import app
from services.config import ROOT, Paths, load_policy
from services.core.pipeline import process
from services.core.pseudonyms import Pseudonymiser
from services.demo.keys import DemoSigner
from services.keys.testing import MemoryKeyStore
from services.riec.handover import MEASURES
from services.riec.model import BARRIER_KINDS, OUTCOMES, ItemState
from services.riec.plan import MEASURES as EFFECT_MEASURES
from services.riec.records import RESULTS

DOC = (ROOT / "docs" / "riec.md").read_text(encoding="utf-8")
COVENANT = (ROOT / "covenants" / "drugslocaties-nh" / "2025.1.yaml").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.DOTALL)


def table(heading: str) -> list[tuple[str, str]]:
    """The two backticked columns of the first table after ``heading``."""
    section = DOC.split(heading, 1)[1]
    return re.findall(
        r"^\| `([a-z_.\-]+)` \| `?([a-z_\-]+)`? ", section.split("\n\n## ")[0], flags=re.MULTILINE
    )


def test_the_hand_over_signal_is_valid_and_the_shipped_rule_hands_it_to_the_mayor():
    [example] = [b for b in blocks("json") if "riec.case_handover.v1" in b]
    envelope = orjson.loads(example)
    assert envelope["data"]["measure"] in MEASURES
    paths = Paths.from_env({})
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference,
        Pseudonymiser(MemoryKeyStore.for_tests()),
        today=datetime(2026, 11, 22, tzinfo=UTC).date(), demo=True,
    )  # fmt: skip
    assert loaded.policy is not None
    raw = orjson.dumps(DemoSigner()(envelope))
    decided = process(raw, loaded.registry, loaded.policy, datetime(2026, 11, 22, 10, tzinfo=UTC))
    assert decided.rejection is None
    delivered = [d for d in decided.decisions if d.delivered]
    assert [(d.recipient, d.rule.rule_id if d.rule else None) for d in delivered] == [
        ("gemeente-alkmaar", "handover-13b-to-mayor-alkmaar")
    ]
    assert delivered[0].payload["address"] == envelope["data"]["address"]


def test_the_rule_is_the_shipped_one():
    [rule] = blocks("yaml")
    assert rule.strip() in COVENANT


def test_the_tables_are_the_codes():
    states = DOC.split("Each item moves through these states", 1)[1].split("\n\n", 2)[1]
    assert re.findall(r"^\| `([a-z]+)` \|", states, flags=re.MULTILINE) == [
        s.value for s in ItemState
    ]
    assert dict(table("### The outcome")) == OUTCOMES
    assert table("## What is audited") == [(f"riec-{k}", v) for k, v in RESULTS.items()]
    assert [m for m, _ in table("its measured effect in its municipality")] == list(EFFECT_MEASURES)
    for kind in BARRIER_KINDS:
        assert f"`{kind}`" in DOC


def test_the_screenshots_exist_and_are_small():
    shots = re.findall(r"\]\((riec/[a-z0-9-]+\.png)\)", DOC)
    assert len(shots) >= 5
    for shot in shots:
        path = ROOT / "docs" / shot
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
        assert path.stat().st_size < 200_000, shot


def test_console_examples_are_the_real_output_of_the_commands(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "covenants", tmp_path / "covenants")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHAKEL_COVENANTS", str(tmp_path / "covenants"))
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SCHAKEL_KEYS", str(tmp_path / "keys.json"))
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", f"sqlite:///{tmp_path / 'hub.db'}")
    monkeypatch.setenv("SCHAKEL_DEMO", "1")
    monkeypatch.delenv("SCHAKEL_KAFKA_BOOTSTRAP", raising=False)
    made = CliRunner().invoke(app, ["keys", "init"])  # what `schakel up` does on first start
    assert made.exit_code == 0, made.output
    ran = 0
    for block in blocks("console"):
        for step in re.split(r"^\$ ", block, flags=re.MULTILINE)[1:]:
            command, *expected = step.strip("\n").splitlines()
            args = shlex.split(command)
            assert args[0] == "schakel", command
            result = CliRunner().invoke(app, args[1:], input="correct horse battery\n")
            assert result.exit_code == 0, (command, result.output)
            for line in expected:
                assert line.strip() in result.output, (command, line, result.output)
            ran += 1
    assert ran == 3
