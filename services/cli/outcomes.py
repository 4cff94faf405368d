"""``schakel outcomes``: run the outcomes worker (returns to the partners that signalled a
location), and purge the matching index of what no rule lets the hub keep any longer."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.output import console

app = typer.Typer(
    help="Outcomes: the matching index and the returns to partners (docs/outcomes.md).",
    no_args_is_help=True,
)


@app.command("run")
def run_command(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")] = 1000,
) -> None:
    """Consume the partners' signals, index them by location, and return each outcome to the
    partners whose own signals it answers, as the covenants allow.

    Run one instance (``schakel up`` starts it for you). Configuration comes from the
    environment like the router's: SCHAKEL_KAFKA_BOOTSTRAP, SCHAKEL_DATABASE_URL, SCHAKEL_KEYS,
    SCHAKEL_COVENANTS.
    """
    from services.outcomes.worker import run_worker

    run_worker(batch_max=batch)


@app.command("purge")
def purge_command() -> None:
    """Delete index entries whose retention has passed (the worker does this every hour)."""
    from datetime import UTC, datetime

    from services.audit.engine import make_engine
    from services.outcomes.errors import OutcomeError
    from services.outcomes.store import SqlOutcomeStore

    store = SqlOutcomeStore(make_engine(None))
    try:
        store.create_schema()
        purged = store.purge(datetime.now(UTC))
    except OutcomeError as exc:
        console(stderr=True).print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(
        f"purged {purged.signals} signal(s), {purged.outcomes} outcome(s) and "
        f"{purged.approvals} approval(s) past their retention"
    )
