"""Barriers loaded from a data file next to the barrier models: checked line by line with the
same scope rules as the plan page (a file with any problem stores nothing), audited, and
loading twice adds nothing; ``schakel riec load-barriers`` does it on the hub's database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import riec as riec_cli
from services.core.barriers.loader import DEFAULT_BARRIERS
from services.keys.file_store import FileKeyStore
from services.riec.plan_load import PlanFileError, load_plan_file
from tests.riec.helpers import Site, plan, user

EXAMPLE = DEFAULT_BARRIERS / "plan" / "example.yaml"
GOOD = """\
barriers:
  - model: cannabis
    step: cannabis.fit_out
    partner: liander
    kind: check
    municipality: GM0361
    since: 2026-04-15
    description: Meter checks
"""


def test_the_shipped_example_loads_is_audited_and_says_it_is_an_illustration(site: Site):
    made = plan(site)
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text.startswith("# ILLUSTRATION") and "illustration:" in text
    done = load_plan_file(made, user(site, "ana"), EXAMPLE)
    assert (done.added, done.skipped) == (3, 0)
    assert done.illustration is not None and "not a real plan" in done.illustration
    barriers = made.barriers()
    assert {b.partner for b in barriers} == {"woonwaard", "liander", "hvc"}
    assert {b.raised_by for b in barriers} == {"ana"}
    records = [
        r for _, r in site.workplace.audit.records(limit=100_000) if r["action"] == "riec-barrier"
    ]
    assert sorted(r["riec"]["barrier"] for r in records) == sorted(b.id for b in barriers)
    digest = hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()[:24]
    assert {r["riec"]["source"] for r in records} == {f"file sha256:{digest}"}
    again = load_plan_file(made, user(site, "ana"), EXAMPLE)
    assert (again.added, again.skipped) == (0, 3)
    assert len(made.barriers()) == 3


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (GOOD.replace("kind: check", "kind: poster"), 2, "kind must be one of"),
        (GOOD.replace("GM0361", "GM0363"), 2, "GM0363 is outside your RIEC's region"),
        (GOOD.replace("liander", "Liander NV"), 2, "unknown partner 'Liander NV'"),
        (GOOD.replace("cannabis.fit_out", "cannabis.dry"), 2, "has no step 'cannabis.dry'"),
        (GOOD.replace("    since: 2026-04-15\n", ""), 2, "barriers.0.since: required key"),
        (GOOD.replace("GM0361", "Alkmaar"), 6, "barriers.0.municipality"),
        (GOOD + "    colour: red\n", 9, "barriers.0.colour: unknown key"),
        (GOOD.replace("barriers:", "barriers: ["), 2, "YAML syntax"),
    ],
)
def test_a_bad_line_is_named_and_nothing_is_stored(
    site: Site, tmp_path: Path, text: str, where: int, message: str
):
    made = plan(site)
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanFileError) as raised:
        load_plan_file(made, user(site, "ana"), path)
    assert f"{path}:{where}:" in str(raised.value) and message in str(raised.value)
    assert made.barriers() == []


def test_one_bad_barrier_of_several_stores_none(site: Site, tmp_path: Path):
    made = plan(site)
    second = GOOD.split("\n", 1)[1].replace("GM0361", "GM0363")
    path = tmp_path / "plan.yaml"
    path.write_text(GOOD + second, encoding="utf-8")
    with pytest.raises(PlanFileError, match=rf"{path}:9: error: municipality GM0363"):
        load_plan_file(made, user(site, "ana"), path)
    assert made.barriers() == []
    with pytest.raises(PlanFileError, match="outside your RIEC's region"):
        load_plan_file(made, user(site, "other-riec"), EXAMPLE)  # another RIEC's analyst
    assert made.barriers() == []


def test_the_file_name_is_free_text_and_stays_out_of_the_audit(site: Site, tmp_path: Path):
    path = tmp_path / "Dorpsstraat 12 Alkmaar.yaml"
    path.write_text(GOOD, encoding="utf-8")
    load_plan_file(plan(site), user(site, "ana"), path)
    [record] = [
        r for _, r in site.workplace.audit.records(limit=100_000) if r["action"] == "riec-barrier"
    ]
    assert "Dorpsstraat" not in repr(record)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD.replace("Meter checks", "Meter\x00checks").encode(), "#x0000 is not allowed"),
        (b"barriers: " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (GOOD.encode() + b"# " + b"x" * (1 << 20) + b"\n", "larger than 1 MiB"),
        (
            GOOD.replace("Meter checks", "!!python/object:os.system Dorpsstraat").encode(),
            "could not determine a constructor",
        ),
    ],
)
def test_odd_bytes_are_a_named_problem_never_a_crash_nor_an_echo(
    site: Site, tmp_path: Path, data: bytes, message: str
):
    path = tmp_path / "plan.yaml"
    path.write_bytes(data)
    with pytest.raises(PlanFileError) as raised:
        load_plan_file(plan(site), user(site, "ana"), path)
    assert message in str(raised.value) and str(path) in str(raised.value)
    assert "Dorps" not in str(raised.value)  # the file's line is not quoted back
    assert plan(site).barriers() == []


def test_a_file_that_never_ends_is_read_only_to_the_limit(site: Site):
    with pytest.raises(PlanFileError, match="larger than 1 MiB"):
        load_plan_file(plan(site), user(site, "ana"), Path("/dev/zero"))


def test_the_cli_loads_into_the_hubs_database(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    keys = tmp_path / "keys.json"
    FileKeyStore.create(keys)
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", str(site.engine.url))
    monkeypatch.setenv("SCHAKEL_KEYS", str(keys))
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SCHAKEL_DEMO", "1")
    runner = CliRunner()
    args = ["load-barriers", str(EXAMPLE), "--user", "ana"]
    loaded = runner.invoke(riec_cli.app, args)
    assert loaded.exit_code == 0, loaded.output
    assert "added 3 barrier(s)" in loaded.stdout and "is an illustration" in loaded.stderr
    assert len(plan(site).barriers()) == 3
    refused = runner.invoke(riec_cli.app, ["load-barriers", str(EXAMPLE), "--user", "other-riec"])
    assert refused.exit_code == 2 and "outside your RIEC's region" in refused.stderr
    nobody = runner.invoke(riec_cli.app, ["load-barriers", str(EXAMPLE), "--user", "eve"])
    assert nobody.exit_code == 2 and "no user 'eve'" in nobody.stderr
