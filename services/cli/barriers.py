"""``schakel barriers``: the barrier-model matrix — steps x signal types, source partners,
covenant rules, recipients and signal volume in the last 30 days; steps with no signal source
or no recipient are gaps, the input for the next covenant negotiation."""

from __future__ import annotations

import csv
import getpass
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import orjson
import typer

from services.cli.audit import DatabaseOption
from services.core.errors import SchakelError


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def barriers_command(
    model: Annotated[
        str | None, typer.Option("--model", help="Only this model, e.g. cannabis or synthetic.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.table,
    models: Annotated[
        Path | None,
        typer.Option("--models", help="Barrier-model file or folder (default covenants/barriers)."),
    ] = None,
    database: DatabaseOption = None,
) -> None:
    """Which business-process steps have signal sources, covenant rules and recipients."""
    from sqlalchemy.exc import SQLAlchemyError

    from services.config import Paths, check_covenants
    from services.core.barriers.loader import DEFAULT_BARRIERS, load_models
    from services.core.barriers.matrix import barrier_matrix
    from services.coverage.volumes import signal_volumes
    from services.database.engine import make_engine
    from services.database.tables.web import metadata as web_metadata
    from services.web.access_log import AccessLog

    paths = Paths.from_env()
    now = datetime.now(UTC)
    try:
        found = load_models([models or DEFAULT_BARRIERS])
        registry, _, checked = check_covenants(
            paths.covenants, paths.schemas, paths.reference, today=now.date(), demo=paths.demo
        )
    except SchakelError as error:
        _fail(str(error))
    if not checked.ok:
        _fail("the covenants have errors; run `schakel covenant check` for details")
    if model is not None:
        found = [m for m in found if m.model == model]
        if not found:
            _fail(f"no barrier model {model!r}. Fix: use cannabis or synthetic.")
    engine = make_engine(database)
    try:
        volumes = signal_volumes(engine, now)
        web_metadata.create_all(engine)
        AccessLog(engine).write(f"cli:{getpass.getuser()}", "barriers", {"model": model or "*"})
    except SQLAlchemyError:
        typer.echo("note: no audit log to count signal volumes in; volumes are 0", err=True)
        volumes = {}
    finally:
        engine.dispose()
    covenants = [c.covenant for c in checked.covenants if c.covenant.in_force(now.date())]
    rows = barrier_matrix(found, registry, covenants, volumes)
    if fmt is Format.json:
        typer.echo(orjson.dumps([r.to_json() for r in rows]).decode())
        return
    if fmt is Format.csv:
        lists = ("barriers", "signal_types", "sources", "rules", "recipients", "gaps")
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["model", "step", "name", *lists, "volume_30d"])
        for row in rows:
            data = row.to_json()
            writer.writerow(
                [row.model, row.step, row.name, *(";".join(data[k]) for k in lists), row.volume]
            )
        return
    from services.cli.output import console, table

    shown = table(
        "Barrier model: steps, sources and recipients (last 30 days)",
        ("step", "signal types", "sources", "recipients", "#signals", "gaps"),
    )
    for row in rows:
        shown.add_row(
            row.step,
            "\n".join(row.signal_types) or "-",
            ", ".join(row.sources) or "-",
            ", ".join(row.recipients) or "-",
            str(row.volume),
            ", ".join(row.gaps),
            style="bold red" if row.gaps else None,
        )
    out = console()
    out.print(shown)
    for shown_model in found:
        if shown_model.provenance:
            out.print(f"{shown_model.title}: {shown_model.provenance}", markup=False)
