"""``schakel outcomes``: run the outcomes worker (returns to the partners that signalled a
location), and purge the matching index of what no rule lets the hub keep any longer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, BinaryIO

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

    from services.database.engine import make_engine
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


@app.command("ingest")
def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines files of signal envelopes.")],
    database: Annotated[
        str | None, typer.Option("--database", help="SQLAlchemy URL (default: the hub's).")
    ] = None,
) -> None:
    """Index the signals and outcomes of files (history, a replay, the demo) for the
    indicators, each decided as of its own time. Nothing is delivered: returns are the
    worker's."""
    from datetime import UTC, datetime

    from services.config import Paths, load_policy
    from services.core.pseudonyms import Pseudonymiser
    from services.database.engine import make_engine
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore
    from services.outcomes.batch import OutcomeStep, Record
    from services.outcomes.errors import OutcomeError
    from services.outcomes.store import SqlOutcomeStore

    paths = Paths.from_env()
    key_path = default_keys_path()
    keys = FileKeyStore.open(key_path) if key_path.exists() else FileKeyStore.create(key_path)
    pseudonymiser = Pseudonymiser(keys)
    now = datetime.now(UTC)
    loaded = load_policy(
        paths.covenants, paths.schemas, paths.reference, pseudonymiser,
        today=now.date(), demo=paths.demo,
    )  # fmt: skip
    if loaded.policy is None:
        console(stderr=True).print("the covenants have errors; run `schakel covenant check`")
        raise typer.Exit(2)
    step = OutcomeStep.build(loaded.registry, loaded.policy, pseudonymiser)
    store = SqlOutcomeStore(make_engine(database))
    try:
        store.create_schema()
        for file in files:
            counts = {"read": 0, "signals": 0, "outcomes": 0, "approvals": 0}
            with file.open("rb") as handle:
                while chunk := [Record("", line) for line in _lines(handle, 1000)]:
                    extracted = step.extract(chunk, now, at_signal_time=True)
                    store.write(extracted.entries)
                    counts["read"] += extracted.signals
                    counts["signals"] += len(extracted.entries.signals)
                    counts["outcomes"] += len(extracted.entries.outcomes)
                    counts["approvals"] += len(extracted.entries.approvals)
            typer.echo(
                f"{file}: {counts['read']} read, {counts['signals']} signals indexed, "
                f"{counts['outcomes']} outcomes, {counts['approvals']} approvals"
            )
    except (OutcomeError, OSError) as exc:
        console(stderr=True).print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    finally:
        store.close()


def _lines(handle: BinaryIO, count: int) -> list[bytes]:
    lines = []
    for line in handle:
        if line.strip():
            lines.append(line.rstrip(b"\n"))
        if len(lines) >= count:
            break
    return lines
