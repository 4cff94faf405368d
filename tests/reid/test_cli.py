"""``schakel reid`` against a real database, key file and covenants."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import reid
from tests.reid.conftest import PASSWORD, Hub
from tests.reid.helpers import canonical, delivered, everything_stored

runner = CliRunner()


def run(hub: Hub, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(
        reid.app,
        [
            *args,
            "--password-stdin",
            "--database",
            f"sqlite:///{hub.path}",
            "--keys",
            str(hub.keys.path),
        ],
        input=PASSWORD + "\n",
    )
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCHAKEL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("SCHAKEL_AUDIT_WITNESS", raising=False)
    monkeypatch.delenv("SCHAKEL_COVENANTS", raising=False)


def test_request_approve_show_once(hub: Hub) -> None:
    record = delivered(hub.records, "riec-nh", "drugslocaties-nh", "ean", reidentify=True)
    expected = canonical(hub.signals[record["signal_id"]], "ean", "ean")
    code, out, err = run(
        hub,
        "request",
        "--as",
        "riec-officer",
        "--recipient",
        "riec-nh",
        "--covenant",
        "drugslocaties-nh",
        "--pseudonym",
        record["pseudonyms"]["ean"],
        "--purpose",
        "check the meter before a visit",
        "--case",
        "RIEC-2026-7",
    )
    assert code == 0, err
    found = re.search(r"Request ([0-9a-f]+) filed", out)
    assert found is not None
    request_id = found.group(1)

    code, out, err = run(hub, "approve", request_id, "--as", "riec-officer")
    assert code == 1
    assert "four eyes" in err
    code, out, err = run(hub, "approve", request_id, "--as", "drugs-officer")
    assert code == 0, err

    code, out, err = run(hub, "list", "--as", "riec-officer")
    assert code == 0, err
    assert request_id in out
    assert "approved" in out
    assert expected not in out

    code, out, err = run(hub, "show", request_id, "--as", "riec-officer")
    assert code == 0, err
    assert out == expected + "\n"
    assert expected not in err

    code, out, err = run(hub, "show", request_id, "--as", "riec-officer")
    assert code == 1
    assert "only once" in err
    assert expected not in out + err
    assert hub.store.count(action="reidentify-reveal") == 1
    assert expected not in everything_stored(hub.engine)


def test_wrong_password_is_refused(hub: Hub) -> None:
    result = runner.invoke(
        reid.app,
        [
            "list",
            "--as",
            "admin",
            "--password-stdin",
            "--database",
            f"sqlite:///{hub.path}",
            "--keys",
            str(hub.keys.path),
        ],
        input="not the password\n",
    )
    assert result.exit_code == 1
    assert "wrong user name or password" in result.stderr


def test_reject_and_unknown_request(hub: Hub) -> None:
    code, _, err = run(hub, "reject", "nope", "--as", "admin", "--reason", "no")
    assert code == 1
    assert "no re-identification request" in err
