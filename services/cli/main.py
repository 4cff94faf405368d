"""Entry point of the ``schakel`` command; each verb group lives in its own module.

A verb's module is imported only when that verb runs (or its own ``--help`` is asked for):
the verbs pull in very different libraries (FastAPI and uvicorn, faust, SQLAlchemy models,
the covenant compiler), and a process that runs ``schakel status`` or a worker should not pay
for all of them at start-up. ``schakel --help`` lists every verb from :data:`VERBS` without
importing any; tests/cli/test_lazy_verbs.py checks that each summary there is the first
paragraph of the verb's own help, and that the light verbs stay light.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

import typer
from typer import _click as click  # typer 0.29 vendors click; its commands are these classes
from typer._click.shell_completion import CompletionItem
from typer.core import TyperCommand, TyperGroup


@dataclass(frozen=True)
class Verb:
    """Where a verb lives: ``module.attribute`` is a Typer group or a command function."""

    module: str
    attribute: str
    summary: str
    """The first paragraph of the verb's help, as ``schakel --help`` lists it."""


def _command(name: str, summary: str) -> Verb:
    """A verb that is one command: ``<name>_command`` in ``services/cli/<name>.py``."""
    return Verb(f"services.cli.{name}", f"{name}_command", summary)


def _group(name: str, summary: str) -> Verb:
    """A verb that is a group of commands: ``app`` in ``services/cli/<name>.py``."""
    return Verb(f"services.cli.{name}", "app", summary)


VERBS: dict[str, Verb] = {
    "barriers": _command(
        "barriers",
        "Which business-process steps have signal sources, covenant rules and recipients.",
    ),
    "indexer": _command(
        "indexer",
        "Read the audit topic and write the audit records, their hash chain and signed\n"
        "checkpoints to the audit database (the single writer; run exactly one per hub).",
    ),
    "maintenance": _command(
        "maintenance",
        "Keep deliveries whole in a deployment where routers run as separate services.",
    ),
    "replay": _command(
        "replay", "Run a file of signals through the covenants exactly as the router would."
    ),
    "router": _command(
        "router",
        "Consume every partner's signals topic, apply the covenants, write feeds and audit.",
    ),
    "up": _command(
        "up",
        "Start broker (embedded unless SCHAKEL_KAFKA_BOOTSTRAP is set), topics, audit store and\n"
        "router workers; print where everything is; stop cleanly on Ctrl-C.",
    ),
    "web": _command("web", "Serve the web workplace and its /metrics, /healthz and /readyz."),
    "publish": _command(
        "publish",
        "Send each valid signal to signals.<partner>; report each invalid line with its reason.",
    ),
    "subscribe": _command(
        "subscribe",
        "Reads feed.<recipient> in the recipient's consumer group and commits what it printed,\n"
        "so the hub knows what was consumed (and re-delivers the rest if the broker loses data).\n"
        "Ctrl-C stops it after the current batch (exit 0).",
    ),
    "status": _command("status", "Show what the hub's broker holds and who is consuming it."),
    "audit": _group(
        "audit",
        "Verify and export the tamper-evident audit log (hash chain with signed checkpoints).",
    ),
    "covenant": _group("covenant", "Check and inspect covenant files; register partner keys."),
    "coverage": _group(
        "coverage", "NH Drugsalert coverage: reports against indicators per municipality and month."
    ),
    "demo": _group(
        "demo", "Simulated partners: realistic, deterministic demo signal traffic (test data only)."
    ),
    "gateway": _group(
        "gateway", "The HTTPS gateway: POST /v1/signals for partners, GET /v1/feed for recipients."
    ),
    "indicators": _group(
        "indicators", "Indicators tested against outcomes: precision, lead time, stacking replays."
    ),
    "keys": _group(
        "keys",
        "Manage the key store: pseudonym keys (versioned, rotated) and the checkpoint signing"
        " key. The key file is --path, else $SCHAKEL_KEYS, else ./var/keys.json; it lists the"
        " public signing keys only. The private signing key is in its own file,"
        " $SCHAKEL_SIGNING_KEY, else beside the key file (keys.signing.json), for the audit"
        " writers only. `keys partner NAME` makes a partner's signal-signing key pair;"
        " `keys verify KEYFILE` confirms it is registered and valid today.",
    ),
    "outcomes": _group(
        "outcomes", "Outcomes: the matching index and the returns to partners (docs/outcomes.md)."
    ),
    "reid": _group(
        "reid", "Re-identification on request: request, approve or reject (four eyes), show once."
    ),
    "riec": _group(
        "riec", "The RIEC workplace: alert triage, case files, the barrier plan (docs/riec.md)."
    ),
    "stacking": _group("stacking", "IIPSy stacking: the worker and its alerts."),
    "users": _group("users", "Manage the users of the privacy officer's web workplace."),
}
"""Every verb of ``schakel``, in the order ``schakel --help`` lists them."""

GROUP_PARTS: dict[str, tuple[str, ...]] = {
    "audit": (
        "services.cli.audit_prove",
        "services.cli.audit_query",
        "services.cli.audit_retention",
    ),
}
"""Modules that attach further commands to a group (each has ``register(app)``)."""

_loaded: dict[str, click.Command] = {}
"""The click command of each verb imported so far in this process."""


def load(name: str) -> click.Command:
    """The click command of verb ``name``, importing its module (once per process)."""
    if name in _loaded:
        return _loaded[name]
    verb = VERBS[name]
    target: Any = getattr(importlib.import_module(verb.module), verb.attribute)
    command: click.Command
    if isinstance(target, typer.Typer):
        for part in GROUP_PARTS.get(name, ()):
            importlib.import_module(part).register(target)
        command = typer.main.get_group(target)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(target)
        command = typer.main.get_command(single)
    command.name = name
    _loaded[name] = command
    return command


def listed(name: str) -> click.Command:
    """Verb ``name`` as ``schakel --help`` lists it: the loaded command, else its summary."""
    return _loaded.get(name) or TyperCommand(name=name, help=VERBS[name].summary)


class LoadOnUse(MutableMapping[str, click.Command]):
    """The verbs as a group's ``commands``: every name in :data:`VERBS`, each imported when
    it is looked up (by click resolving the verb to run, or by anyone walking the group)."""

    def __getitem__(self, name: str) -> click.Command:
        if name not in VERBS:
            raise KeyError(name)
        return load(name)

    def __iter__(self) -> Iterator[str]:
        return iter(VERBS)

    def __len__(self) -> int:
        return len(VERBS)

    def __setitem__(self, name: str, command: click.Command) -> None:
        raise TypeError(f"add verb {name!r} to VERBS in services/cli/main.py")

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"verb {name!r} is listed in VERBS in services/cli/main.py")


class LazyVerbs(TyperGroup):
    """The ``schakel`` group: its verbs load on use; its help lists them from their summaries
    (so ``schakel --help`` imports none of them)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LoadOnUse()
        self._listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)  # (TyperGroup's walks commands.items(), which would load them)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if self._listing and cmd_name in VERBS:
            return listed(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        self._listing = True
        try:
            return super().shell_complete(ctx, incomplete)
        finally:
            self._listing = False


app = typer.Typer(
    name="schakel",
    cls=LazyVerbs,
    help="Schakel: covenant-governed information exchange for public-private partnerships.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold identifiers or key material
)


@app.callback()
def _verbs() -> None:
    # Typer builds a group (rather than one command) only for an app with a callback or verbs;
    # the verbs are LazyVerbs's, so an empty callback it is
    pass


def main() -> None:
    try:
        app()
    except Exception as error:
        from services.hub.state import HubNotRunning

        if not isinstance(error, HubNotRunning):
            raise
        # expected, not a bug: one line, no traceback
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1) from None
