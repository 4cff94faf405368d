"""``schakel riec``: the RIEC workplace's feed reader and its retention purge
(docs/riec.md)."""

from __future__ import annotations

import typer

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
