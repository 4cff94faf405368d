"""Every command the banner of `schakel up` and the README suggest works as printed.

The commands are taken from the banner a running hub printed (its stdout a file, not a
terminal) and from the README's code spans, never from a list kept here. Each is run against
that hub in a fresh working directory:

* a plain command runs to completion with exit 0 and some output; one that serves or follows
  until stopped must still run after start-up, answer, and stop on Ctrl-C (SIGINT) with exit 0;
* a placeholder the banner asks to fill in (``NAME``) is filled in;
* a synopsis (``[--option]``, ``a|b``, ``FILE``…) names verbs and options that exist
  (``--help`` lists them);
* ``make TARGET`` is a target whose recipe expands (``make -n``; running ``make test`` from a
  test would recurse).

The servers `schakel web` and `schakel gateway` get ``--port`` with a free port, as the
machine running the tests may serve the defaults already.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from services.broker.process import free_loopback_port
from services.cli.main import app

pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PLACEHOLDERS = {"NAME": "newcomer"}
"""Placeholders the banner asks the reader to fill in, and what this test fills in."""
PASSWORD = "a newcomer's passphrase"
SERVERS = {("web",), ("gateway",)}
"""Verbs that serve until stopped and answer /healthz on their --port."""
WORKERS = {("outcomes", "run"), ("riec", "run"), ("indexer",), ("stacking", "run"), ("router",)}
"""Workers ``schakel up`` starts, which run until stopped: their synopsis is checked here;
tests/hub/test_worker_health.py starts each of them beside a real hub and proves it stays up."""
HUB = {("up",), ("up", "--demo")}
"""The hub itself: what this test runs (with free ports) and stops with Ctrl-C."""
DEPLOYMENT_ONLY = {
    ("maintenance",): "SCHAKEL_KAFKA_BOOTSTRAP is not set",
}
"""Verbs the README names as services of a deployment (deploy/): run as printed on a laptop
they refuse with this fix hint, because `schakel up` does their work itself."""


@dataclass
class Hub:
    env: dict[str, str]
    banner: str
    process: subprocess.Popen[bytes]


def run(args: list[str], hub: Hub, cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload]
        [sys.executable, "-m", "services.cli", *args],
        env=hub.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("hub")
    # a copy of the covenants: a suggested command may write next to them (`indicators
    # replay-stacking --record` keeps its record with the rule file), never in the checkout
    shutil.copytree(ROOT / "covenants", tmp / "covenants")
    env = {
        **os.environ,
        "SCHAKEL_COVENANTS": str(tmp / "covenants"),
        "SCHAKEL_STATE_DIR": str(tmp / "var"),
        "SCHAKEL_KEYS": str(tmp / "var" / "keys.json"),
        "SCHAKEL_DATABASE_URL": f"sqlite:///{tmp / 'var' / 'audit.db'}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("SCHAKEL_KAFKA_BOOTSTRAP", None)
    env.pop("COLUMNS", None)
    out = tmp / "up.out"
    ports = ["--web-port", str(free_loopback_port()), "--gateway-port", str(free_loopback_port())]
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--demo", "--rate", "50", *ports],
            env=env,
            cwd=tmp,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "stop:" not in out.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        hub = Hub(env, out.read_text(), process)
        while True:  # the router worker joined its group: the hub is working
            status = run(["status", "--json"], hub, tmp)
            if status.returncode == 0 and orjson.loads(status.stdout)["router_workers"]:
                break
            assert time.monotonic() < deadline, status.stdout + status.stderr
            time.sleep(2)
        yield hub
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(90)


def spans(text: str) -> list[str]:
    """Code spans and ```sh lines that start with `schakel VERB` or `make TARGET`."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        found += [line.split("#", 1)[0].strip() for line in block.splitlines()]
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    found += [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", prose)]
    return [s for s in dict.fromkeys(found) if re.match(r"(schakel|make) [a-z]", s)]


def banner_commands(banner: str) -> list[str]:
    lines = [line.strip("│ ") for line in banner.splitlines()]
    found = [m.strip() for line in lines for m in re.findall(r"schakel [a-z][^);\n]*", line)]
    return list(dict.fromkeys(found))


def is_synopsis(command: str) -> bool:
    return bool(re.search(r"[\[\]|…]|\b[A-Z]{2,}\b|\bN\b", command))


def verbs(command: str) -> tuple[str, ...]:
    words = command.split()[1:]
    taken: list[str] = []
    for word in words:
        if not re.fullmatch(r"[a-z][a-z-]*", word):
            break
        taken.append(word)
    return tuple(taken)


def expand(command: str) -> list[str]:
    """``schakel audit search|report`` -> each alternative verb on its own."""
    words = command.split()
    for index, word in enumerate(words):
        parts = word.split("|")
        if len(parts) > 1 and all(re.fullmatch(r"[a-z][a-z-]*", p) for p in parts):
            return [
                alternative
                for part in parts
                for alternative in expand(" ".join([*words[:index], part, *words[index + 1 :]]))
            ]
    return [command]


def run_until_stopped(
    args: list[str], hub: Hub, cwd: Path, *, ready: str | None = None, port: int | None = None
) -> tuple[int, str, str]:
    """Start ``args``, wait until it printed ``ready`` (or answers /healthz on ``port``), then
    Ctrl-C; its exit code and output."""
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", *args],
        env=hub.env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = b""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            if ready is not None and process.stdout is not None:
                first += process.stdout.readline()
                if ready in first.decode(errors="replace"):
                    break
            elif port is not None and _healthy(port):
                break
            else:
                time.sleep(0.5)
        assert process.poll() is None, "it should still run until stopped"
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    return process.returncode, (first + out).decode(errors="replace"), err.decode(errors="replace")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def check_runs(command: str, hub: Hub, cwd: Path) -> None:
    args = command.split()[1:]
    verb = verbs(command)
    if verb in HUB:
        assert "Schakel hub is up" in hub.banner  # the fixture runs it as printed, plus ports
        return
    if verb in DEPLOYMENT_ONLY:
        done = run(args, hub, cwd)
        assert done.returncode != 0 and DEPLOYMENT_ONLY[verb] in done.stderr + done.stdout
        return
    if verb in SERVERS:
        port = free_loopback_port()
        code, out, err = run_until_stopped([*args, "--port", str(port)], hub, cwd, port=port)
    elif "--follow" in args:
        code, out, err = run_until_stopped(args, hub, cwd, ready="exchange_id")
    else:
        done = run(args, hub, cwd, input=f"{PASSWORD}\n{PASSWORD}\n")
        code, out, err = done.returncode, done.stdout, done.stderr
        assert out.strip() or err.strip(), f"{command}: no output at all"
    assert code == 0, f"{command} exited {code}:\n{out[-2000:]}\n{err[-3000:]}"
    assert "Traceback" not in err, f"{command}:\n{err}"


def check_synopsis(command: str) -> None:
    verb = verbs(command)
    assert verb, command
    shown = CliRunner().invoke(app, [*verb, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, f"{command}: {shown.output}"
    for option in re.findall(r"--[a-z][a-z-]*", command):
        assert option in shown.output, f"{command}: {option} is not an option of {verb}"


def test_the_banner_suggests_only_commands_that_work_as_printed(hub: Hub, tmp_path: Path):
    commands = banner_commands(hub.banner)
    assert "schakel publish --as liander examples/liander.jsonl" in commands
    assert "schakel status" in commands and "schakel users add NAME --role admin" in commands
    assert "…" not in hub.banner, "the banner was cut (stdout is not a terminal here)"
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # relative paths as from a checkout
    for command in commands:
        filled = " ".join(PLACEHOLDERS.get(word, word) for word in command.split())
        assert not is_synopsis(filled), f"the banner should print commands, not {command}"
        check_runs(filled, hub, tmp_path)
    published = run(["publish", "--as", "liander", "examples/liander.jsonl"], hub, tmp_path)
    assert published.stderr.strip() == "sent 100 signal(s) to signals.liander; 0 refused"
    status = run(["status"], hub, tmp_path)
    assert "router workers in group schakel-router: 1" in status.stdout


def test_the_readme_suggests_only_commands_that_work_as_printed(hub: Hub, tmp_path: Path):
    suggested = spans(README)
    assert "make test" in suggested and "schakel demo generate" in suggested
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # relative paths as from a checkout
    for span in suggested:
        for command in expand(span):
            if command.startswith("make "):
                target = command.split()[1]
                dry = subprocess.run(
                    ["make", "-n", target], cwd=ROOT, capture_output=True, timeout=60, check=False
                )
                assert dry.returncode == 0, f"{command}: {dry.stderr.decode()}"
            elif is_synopsis(span) or verbs(command) in WORKERS:
                check_synopsis(command)
            else:
                check_runs(command, hub, tmp_path)
