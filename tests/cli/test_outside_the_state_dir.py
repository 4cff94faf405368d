"""Commands run where there is no hub state (issue 15, F6): one line naming the working
directory and SCHAKEL_STATE_DIR and the fix, no traceback, and no file created."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.config import ROOT

pytestmark = pytest.mark.timeout(120)

COMMANDS = (
    ["status"],
    ["subscribe", "--as", "riec-nh"],
    ["audit", "verify"],
    ["audit", "search"],
    ["keys", "list"],
)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_command_outside_the_hubs_directory_says_where_it_looked_and_creates_nothing(
    args: list[str], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHAKEL_")}
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "300"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        timeout=90,
        check=False,
    )
    err = done.stderr.decode()
    assert done.returncode != 0
    assert "Traceback" not in err and "╭" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "SCHAKEL_STATE_DIR" in lines[0], err
    assert str(elsewhere / "var") in lines[0], err
    assert "create_schema" not in lines[0], err
    assert list(elsewhere.iterdir()) == [], "a read-only command created files"
