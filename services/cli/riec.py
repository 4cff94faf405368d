"""``schakel riec``: the RIEC workplace's feed reader and its retention purge
(docs/riec.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.riec.model import RiecError

app = typer.Typer(
    help="The RIEC workplace: alert triage, case files, the barrier plan (docs/riec.md).",
    no_args_is_help=True,
)


@app.command("run")
def run_command() -> None:
    """Read the RIECs' feeds into the workplace (``schakel up`` starts it for you).

    Configuration comes from the environment like the router's: SCHAKEL_KAFKA_BOOTSTRAP,
    SCHAKEL_DATABASE_URL, SCHAKEL_KEYS, SCHAKEL_COVENANTS.
    """
    from services.riec.worker import run_worker

    run_worker()


@app.command("purge")
def purge_command() -> None:
    """Delete cases and items past their retention (the reader does this every hour)."""
    from services.riec.retention import purge
    from services.riec.wiring import hub_workplace

    built = hub_workplace()
    try:
        workplace = built.cases.workplace
        done = purge(workplace, workplace.now())
    finally:
        built.close()
    typer.echo(f"purged {done.cases} case(s) and {done.items} item(s) past their retention")


@app.command("load-barriers")
def load_barriers_command(
    file: Annotated[Path, typer.Argument(help="A plan file, e.g. covenants/barriers/plan/*.yaml.")],
    user: Annotated[
        str,
        typer.Option("--user", help="The analyst (or admin) account the barriers are entered as."),
    ],
) -> None:
    """Add the barriers of a plan data file to the joint barrier plan (docs/riec.md).

    Each barrier is checked as if USER entered it on the plan page — their RIEC's region,
    partners of their covenants — and audited; a file with any problem adds nothing.
    """
    from services.config import Paths
    from services.riec.plan_load import load_plan_file
    from services.riec.wiring import barrier_plan, hub_workplace
    from services.web.users import UserStore

    built = hub_workplace()
    try:
        workplace = built.cases.workplace
        found = UserStore(workplace.engine).get(user)
        if found is None:
            typer.echo(f"error: no user {user!r}. Fix: `schakel users list`.", err=True)
            raise typer.Exit(code=2)
        plan = barrier_plan(workplace, Paths.from_env())
        try:
            done = load_plan_file(plan, found, file)
        except RiecError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(code=2) from None
    finally:
        built.close()
    if done.illustration:
        typer.echo(f"note: {file.name} is an illustration: {done.illustration}", err=True)
    typer.echo(f"added {done.added} barrier(s) to the plan; {done.skipped} were in it already")
