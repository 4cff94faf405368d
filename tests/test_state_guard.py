"""The state guard (tests/state_guard.py) fails a test that touches the checkout's state or the
user's home, and leaves a test that keeps to its own state directory alone.

Runs a small test session in a child pytest with the guard plugin, guarding a stand-in for the
checkout's ``var/`` (``SCHAKEL_TEST_GUARDED_STATE``) and with a stand-in home directory, so
the real ones are never touched to prove the point.
"""

from __future__ import annotations

import pytest

from tests.state_guard import GUARDED_COVENANTS_ENV, GUARDED_ENV, ROOT

pytestmark = pytest.mark.timeout(180)

INNER_TESTS = """
import os
import subprocess
import sys
from pathlib import Path

GUARDED = Path(os.environ["SCHAKEL_TEST_GUARDED_STATE"])


def test_reads_the_checkout_witness():
    (GUARDED / "audit-witness.jsonl").read_text()


def test_opens_the_checkout_audit_database():
    import sqlite3

    sqlite3.connect(GUARDED / "audit.db").close()


def test_a_child_process_writes_the_checkout_key_file():
    target = str(GUARDED / "keys.json")
    subprocess.run([sys.executable, "-c", f"open({target!r}, 'w').write('x')"], check=True)


def test_a_child_process_keeps_a_record_next_to_the_checkout_covenants():
    target = Path(os.environ["SCHAKEL_TEST_GUARDED_COVENANTS"]) / "stacking" / "validation"
    code = f"import pathlib; d = pathlib.Path({str(target)!r}); d.mkdir(parents=True); "
    subprocess.run([sys.executable, "-c", code + "(d / 'r.json').write_text('{}')"], check=True)


def test_writes_into_the_home_directory():
    (Path.home() / ".config" / "schakel.toml").write_text("x")


def test_keeps_to_its_own_state():
    from services.database.engine import database_url
    from services.config import Paths
    from services.keys import default_keys_path

    paths = Paths.from_env()
    assert paths.state.is_dir() and not paths.state.is_relative_to(GUARDED)
    assert default_keys_path() == paths.state / "keys.json"
    assert database_url() == f"sqlite:///{paths.state / 'audit.db'}"
    (paths.state / "keys.json").write_text("x")
    assert not os.environ.get("SCHAKEL_KEYS") and not os.environ.get("SCHAKEL_DATABASE_URL")
"""


def test_the_guard_fails_each_test_that_touches_the_checkout_or_home_state(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    guarded = pytester.path / "checkout-var"
    guarded.mkdir()
    (guarded / "audit-witness.jsonl").write_text("{}\n")
    (guarded / "audit.db").write_bytes(b"")
    home = pytester.path / "home"
    (home / ".config").mkdir(parents=True)
    covenants = pytester.path / "checkout-covenants"
    (covenants / "stacking").mkdir(parents=True)
    monkeypatch.setenv(GUARDED_ENV, str(guarded))
    monkeypatch.setenv(GUARDED_COVENANTS_ENV, str(covenants))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    # a developer's shell: all of this must be ignored by the tests
    monkeypatch.setenv("SCHAKEL_KEYS", str(guarded / "keys.json"))
    monkeypatch.setenv("SCHAKEL_DATABASE_URL", f"sqlite:///{guarded / 'audit.db'}")
    pytester.makepyfile(test_inner=INNER_TESTS)

    result = pytester.runpytest_subprocess(
        "test_inner.py", "-p", "tests.state_guard", "-p", "no:randomly", "-v"
    )

    out = result.stdout.str()
    assert "test_keeps_to_its_own_state PASSED" in out, out
    for name, finding in [
        ("test_reads_the_checkout_witness", f"open {guarded / 'audit-witness.jsonl'}"),
        ("test_opens_the_checkout_audit_database", f"sqlite3.connect {guarded / 'audit.db'}"),
        (
            "test_a_child_process_writes_the_checkout_key_file",
            f"changed by a child process: {guarded / 'keys.json'}",
        ),
        (
            "test_a_child_process_keeps_a_record_next_to_the_checkout_covenants",
            f"changed by a child process: {covenants / 'stacking' / 'validation' / 'r.json'}",
        ),
        (
            "test_writes_into_the_home_directory",
            f"open (writing) {home / '.config' / 'schakel.toml'}",
        ),
    ]:
        assert f"ERROR at teardown of {name}" in out, out
        assert finding in out, out
    assert not (home / ".config" / "schakel.toml").exists()  # refused, not just reported
    assert result.ret != 0


SESSION_FIXTURE_TESTS = """
import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def witness():
    try:  # a fixture that shrugs off the refusal: only the session's report can catch it
        return (Path(os.environ["SCHAKEL_TEST_GUARDED_STATE"]) / "audit-witness.jsonl").read_text()
    except OSError:
        return ""


def test_uses_a_session_fixture_that_read_the_checkout_witness(witness):
    pass


def test_keeps_to_its_own_state():
    pass
"""


def test_under_xdist_a_session_fixture_that_touches_the_checkout_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    """make test runs pytest with xdist workers: what a worker's session fixture touched must
    still fail the whole run (a worker's own exit status does not), naming the path."""
    guarded = pytester.path / "checkout-var"
    guarded.mkdir()
    (guarded / "audit-witness.jsonl").write_text("{}\n")
    monkeypatch.setenv(GUARDED_ENV, str(guarded))
    monkeypatch.setenv("TMPDIR", str(pytester.mkdir("tmp")))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_inner=SESSION_FIXTURE_TESTS)

    result = pytester.runpytest_subprocess(
        "test_inner.py", "-p", "tests.state_guard", "-p", "no:randomly", "-n", "2"
    )

    out = result.stdout.str()
    assert "the test session touched the checkout's or the user's state" in out, out
    assert f"open {guarded / 'audit-witness.jsonl'}" in out, out
    assert result.ret != 0, out
