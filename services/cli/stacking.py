"""``schakel stacking``: run the stacking worker (IIPSy) and list the current alerts."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from services.cli.output import console, table

app = typer.Typer(help="IIPSy stacking: the worker and its alerts.", no_args_is_help=True)


@app.command("run")
def run_command(
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")] = 1000,
) -> None:
    """Consume the partners' signals, stack evidence per location, publish alerts.

    Run one instance (``schakel up`` starts it for you). Configuration comes from the
    environment like the router's: SCHAKEL_KAFKA_BOOTSTRAP, SCHAKEL_DATABASE_URL, SCHAKEL_KEYS,
    SCHAKEL_COVENANTS (whose stacking/ folder holds the stacking rule).
    """
    from services.stacking.worker import run_worker

    run_worker(batch_max=batch)


@app.command("alerts")
def alerts_command(
    municipality: Annotated[
        str | None, typer.Option(help="Only this municipality (CBS code, e.g. GM0361).")
    ] = None,
    min_score: Annotated[float, typer.Option(min=0.0, max=1.0, help="Lowest score shown.")] = 0.0,
    limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100,
    output: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Current stacked-location alerts, highest score first (locations as internal pseudonyms)."""
    from services.database.engine import make_engine
    from services.stacking.errors import StackingError
    from services.stacking.store import SqlStackingStore

    if output not in ("table", "json"):
        raise typer.BadParameter("--format must be table or json")
    store = SqlStackingStore(make_engine(None))
    try:
        store.create_schema()
        alerts = store.alerts(municipality=municipality, min_score=min_score, limit=limit)
    except StackingError as exc:
        console(stderr=True).print(str(exc), style="red", markup=False)
        raise typer.Exit(1) from None
    finally:
        store.close()
    if output == "json":
        rows = [
            {
                "alert_id": a.alert_id,
                "location": a.location,
                "municipality": a.municipality,
                "score": a.score,
                "partner_kinds": list(a.partner_kinds),
                "signal_types": list(a.signal_types),
                "barrier_steps": list(a.barrier_steps),
                "evidence_count": a.evidence_count,
                "revision": a.revision,
                "first_seen": a.first_seen.isoformat(),
                "last_seen": a.last_seen.isoformat(),
                "published": a.published,
            }
            for a in alerts
        ]
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    out = table(
        f"{len(alerts)} stacked-location alert(s)",
        ("location (internal pseudonym)", "municipality", "score", "kinds", "#evidence", "rev",
         "last seen"),
    )  # fmt: skip
    for a in alerts:
        out.add_row(
            a.location,
            a.municipality,
            f"{a.score:.3f}",
            ", ".join(a.partner_kinds),
            str(a.evidence_count),
            str(a.revision),
            a.last_seen.date().isoformat(),
        )
    console().print(out)
