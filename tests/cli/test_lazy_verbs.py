"""`schakel` imports a verb's module only when that verb runs, and the light verbs stay light.

Every CLI subprocess of the tests (and every worker `schakel up` starts) paid about a second
of CPU for importing every verb's dependencies before the verbs were loaded lazily; these
tests fail if that silently comes back: a module-level import of the web stack, the stream
engine or the covenant compiler in a verb module, or in what a light verb imports.
"""

from __future__ import annotations

import inspect
import json
import os
import pkgutil
import subprocess
import sys
from importlib import import_module
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import services.cli
from services.cli import main as cli_main
from services.config import ROOT

pytestmark = pytest.mark.timeout(120)

WEB_STACK_AND_STREAMS = ("fastapi", "starlette", "uvicorn", "faust", "mode")
"""What only a serving verb or a worker's run may import: never a verb's ``--help``."""


def modules_after(args: list[str], tmp_path: Path) -> tuple[set[str], str]:
    """The modules ``python -m services.cli ARGS`` had imported when it exited, and what it
    wrote to stderr."""
    probe = (
        "import json, runpy, sys\n"
        "sys.argv = ['schakel', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('services.cli', run_name='__main__', alter_sys=True)\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.__stdout__.write('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHAKEL_")}
    env |= {"PYTHONPATH": str(ROOT), "SCHAKEL_STATE_DIR": str(tmp_path / "no-hub")}
    done = subprocess.run(
        [sys.executable, "-c", probe, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.stdout.strip(), done.stderr
    return set(json.loads(done.stdout.strip().splitlines()[-1])), done.stderr


def heavy(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def test_schakel_help_imports_no_verb_and_none_of_its_libraries(tmp_path: Path):
    modules, _ = modules_after(["--help"], tmp_path)
    assert sorted(m for m in modules if m.startswith("services.")) == [
        "services.cli",
        "services.cli.main",
    ]
    libraries = (*WEB_STACK_AND_STREAMS, "sqlalchemy", "aiokafka", "kafka", "cryptography")
    assert heavy(modules, (*libraries, "celpy")) == []


def test_status_imports_neither_the_web_stack_nor_sqlalchemy_nor_the_covenant_compiler(
    tmp_path: Path,
):
    """`schakel status` (run here where no hub is: it says so and exits 1) needs the broker's
    admin client and the hub's state file, nothing else of weight."""
    modules, err = modules_after(["status"], tmp_path)
    assert "error: no hub is running" in err.lower()  # it ran as far as looking for the hub
    unwanted = (*WEB_STACK_AND_STREAMS, "sqlalchemy", "aiokafka", "celpy", "cryptography")
    assert heavy(modules, unwanted) == []
    covenants = {m for m in modules if m.startswith("services.core.covenant.")}
    assert covenants <= {"services.core.covenant.problems"}  # no model, checker or compiler
    assert not {m for m in modules if m.startswith("services.cli.")} - {
        "services.cli.main",
        "services.cli.output",
        "services.cli.status",
    }


def test_issuing_a_gateway_token_does_not_import_the_web_server(tmp_path: Path):
    """`schakel gateway token issue` (run many times by the hub tests) writes a row in the
    audit database: the gateway's server (FastAPI, uvicorn) is not needed for that."""
    modules, err = modules_after(["gateway", "token", "issue", "--partner", "liander"], tmp_path)
    assert "token " in err and "for partner liander" in err, err  # it issued one
    assert heavy(modules, WEB_STACK_AND_STREAMS) == []
    assert "services.gateway.serve" not in modules


def test_no_verb_module_imports_the_web_stack_or_a_stream_engine_at_import(tmp_path: Path):
    """Every verb's module (and the group parts) imported in one process: together they must
    not pull in FastAPI, uvicorn or faust, which a verb imports when it serves or runs."""
    probe = (
        "import json, sys\n"
        "from services.cli.main import VERBS, load\n"
        "for name in VERBS:\n"
        "    load(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    modules = set(json.loads(done.stdout))
    assert {f"services.cli.{name}" for name in ("audit_prove", "web", "up")} <= modules
    assert heavy(modules, WEB_STACK_AND_STREAMS) == []


@pytest.mark.parametrize("name", list(cli_main.VERBS))
def test_the_listing_shows_each_verbs_own_summary(name: str):
    command = cli_main.load(name)
    own = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
    assert own == cli_main.VERBS[name].summary, (
        f"services/cli/main.py VERBS[{name!r}].summary should be the first paragraph of its "
        f"help:\n{own}"
    )
    assert not command.hidden


def test_every_verb_module_is_listed():
    """A module of services/cli with a Typer group or a ``<module>_command`` is a verb in
    VERBS (else `schakel` would not offer it), one with ``register(app)`` a group part."""
    verbs = {(v.module, v.attribute) for v in cli_main.VERBS.values()}
    parts = {part for group in cli_main.GROUP_PARTS.values() for part in group}
    for info in pkgutil.iter_modules(services.cli.__path__):
        if info.name in ("main", "__main__"):
            continue
        module = import_module(f"services.cli.{info.name}")
        if isinstance(getattr(module, "app", None), typer.Typer):
            assert (module.__name__, "app") in verbs, f"{module.__name__}.app is not a verb"
        if callable(getattr(module, f"{info.name}_command", None)):
            assert (module.__name__, f"{info.name}_command") in verbs, module.__name__
        if callable(getattr(module, "register", None)):
            assert module.__name__ in parts, f"{module.__name__}.register is never called"


def test_the_help_lists_every_verb_and_a_verb_runs_from_the_lazy_listing(tmp_path: Path):
    runner = CliRunner()
    shown = runner.invoke(cli_main.app, ["--help"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0, shown.output
    for name, verb in cli_main.VERBS.items():
        first_line = verb.summary.splitlines()[0]
        assert f" {name} " in shown.output and first_line[:60] in shown.output, name
    typo = runner.invoke(cli_main.app, ["statsu"])
    assert typo.exit_code != 0 and "Did you mean 'status'" in typo.output
    keys = tmp_path / "keys.json"
    made = runner.invoke(cli_main.app, ["keys", "init", "--path", str(keys)])
    assert made.exit_code == 0, made.output
    assert keys.exists()
