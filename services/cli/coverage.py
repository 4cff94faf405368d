"""``schakel coverage``: NH Drugsalert coverage — reports against indicators per municipality.

``schakel coverage [--month YYYY-MM] [--format table|csv|json]`` shows the report-gap ranking
(where indicators are high but few people report) from the suppressed release: counts below
the threshold are shown as ``<5`` and never enter a total. ``schakel coverage ingest FILE``
counts signals from a file of envelopes (what the router routed, e.g. a replay);
``schakel coverage publish --month`` releases a month to the campaign team's feed as an
audited disclosure under its covenant. Each run that shows counts writes an access-log row.
"""

from __future__ import annotations

import csv
import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer

from services.cli.audit import DatabaseOption
from services.core.errors import SchakelError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.coverage.view import CoverageView

app = typer.Typer(
    help="NH Drugsalert coverage: reports against indicators per municipality and month.",
    invoke_without_command=True,
)

CAMPAIGN_TEAM = "campagneteam-nh"


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


MonthOption = Annotated[
    str | None, typer.Option("--month", help="Month YYYY-MM (default: newest with data).")
]
ThresholdOption = Annotated[
    int, typer.Option("--threshold", min=1, help="Counts below this are suppressed.")
]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys", help="Key store (default $SCHAKEL_KEYS or var/keys.json).", dir_okay=False
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def _engine(database: str | None) -> Iterator[Engine]:
    from services.coverage.store import SqlCoverageStore
    from services.database.engine import make_engine

    engine = make_engine(database)
    try:
        SqlCoverageStore(engine).create_schema()
        yield engine
    finally:
        engine.dispose()


@app.callback()
def coverage(
    ctx: typer.Context,
    month: MonthOption = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, csv or json.")] = Format.table,
    threshold: ThresholdOption = 5,
    database: DatabaseOption = None,
) -> None:
    """Show the report-gap ranking of a month (counts below the threshold suppressed)."""
    if ctx.invoked_subcommand is not None:
        return
    from services.config import Paths
    from services.core.regions import ReferenceData
    from services.coverage.store import SqlCoverageStore
    from services.coverage.view import coverage_view, municipalities
    from services.database.tables.web import metadata as web_metadata
    from services.web.access_log import AccessLog

    known = municipalities(ReferenceData.load(Paths.from_env().reference))
    with _engine(database) as engine:
        try:
            view = coverage_view(
                SqlCoverageStore(engine),
                known,
                month=month,
                today=datetime.now(UTC).date(),
                threshold=threshold,
            )
        except SchakelError as error:
            _fail(str(error))
        web_metadata.create_all(engine)
        detail = {"month": view.month, "threshold": threshold, "format": fmt.value}
        AccessLog(engine).write(f"cli:{getpass.getuser()}", "coverage", detail)
    _emit(view, fmt)


def _shown(value: int | None, threshold: int) -> str:
    return f"<{threshold}" if value is None else str(value)


def _emit(view: CoverageView, fmt: Format) -> None:
    if fmt is Format.json:
        typer.echo(orjson.dumps(view.to_json()).decode())
        return
    t = view.release.threshold
    ranked = {g.municipality: g for g in view.ranking}
    rows: list[dict[str, Any]] = []
    for cell in view.release.rows_of(view.month):
        gap = ranked.get(cell.municipality)
        rows.append(
            {
                "rank": gap.rank if gap else "",
                "municipality": cell.municipality,
                "name": cell.name,
                "reports": _shown(cell.reports, t),
                "indicators": _shown(cell.indicators, t),
                "expected_reports": gap.expected_reports if gap else "",
                "gap": gap.gap if gap else "",
            }
        )
    rows.sort(key=lambda r: (r["rank"] == "", r["rank"] or 0, r["municipality"]))
    if fmt is Format.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    from services.cli.output import console, table

    total = next(x for x in view.release.totals if x.month == view.month)
    shown = table(
        f"Coverage {view.month}: report gap (counts below {t} suppressed; totals of published "
        f"counts: {total.reports} reports, {total.indicators} indicators)",
        ("#rank", "municipality", "name", "#reports", "#indicators", "#expected", "#gap"),
    )
    for line in rows:
        if line["rank"] != "":
            shown.add_row(*(str(v) for v in line.values()))
    console().print(shown)
    unranked = sum(1 for r in rows if r["rank"] == "")
    console().print(f"{unranked} municipalities have too few indicators to rank.")
    console().print(
        f"Showing {view.month}: {view.chosen}. Another month: --month YYYY-MM.", markup=False
    )


@app.command("ingest")
def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="JSON-lines files of signal envelopes.")],
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """Count the signals of files (e.g. what the hub routed) into the coverage facts."""
    from services.config import Paths, load_policy
    from services.core.pseudonyms import Pseudonymiser
    from services.coverage.ingest import ingest
    from services.coverage.store import SqlCoverageStore
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore

    paths = Paths.from_env()
    key_path = keys or default_keys_path()
    key_store = FileKeyStore.open(key_path) if key_path.exists() else FileKeyStore.create(key_path)
    now = datetime.now(UTC)
    loaded = load_policy(
        paths.covenants,
        paths.schemas,
        paths.reference,
        Pseudonymiser(key_store),
        today=now.date(),
        demo=paths.demo,
    )
    if loaded.policy is None:
        _fail("the covenants have errors; run `schakel covenant check` for details")
    with _engine(database) as engine:
        store = SqlCoverageStore(engine)
        for file in files:
            try:
                with file.open("rb") as handle:
                    summary = ingest(handle, loaded.registry, loaded.policy, store, now)
            except OSError as error:
                _fail(f"cannot read {file}: {error.strerror}")
            typer.echo(
                f"{file}: {summary.read} signals read, {summary.counted} counted, {summary.new} new"
            )


@app.command("run")
def run_command(database: DatabaseOption = None) -> None:
    """Run the coverage worker: count routed signals as they arrive (`schakel up` runs it)."""
    import logging

    from services.coverage.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        run_worker(database)
    except SchakelError as error:
        _fail(str(error))


@app.command("publish")
def publish_command(
    month: Annotated[str, typer.Option("--month", help="Month to release, YYYY-MM.")],
    recipient: Annotated[
        str, typer.Option("--recipient", help="The campaign team party.")
    ] = CAMPAIGN_TEAM,
    threshold: Annotated[
        int | None,
        typer.Option(
            "--threshold",
            min=1,
            help="Counts below this are suppressed (default: the covenant's min_cell).",
        ),
    ] = None,
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """Release a month's suppressed counts to the campaign team's feed, audited."""
    from services.audit.hub_store import hub_signer, open_hub_store
    from services.config import Paths, check_covenants
    from services.core.coverage.facts import months_until
    from services.core.regions import ReferenceData
    from services.coverage.producer import KafkaFeedProducer
    from services.coverage.publish import publish_month
    from services.coverage.store import SqlCoverageStore
    from services.coverage.view import municipalities
    from services.hub.state import client_settings
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore

    paths = Paths.from_env()
    now = datetime.now(UTC)
    try:
        months_until(month, 1)
        _, _, checked = check_covenants(
            paths.covenants, paths.schemas, paths.reference, today=now.date(), demo=paths.demo
        )
        if not checked.ok:
            _fail("the covenants have errors; run `schakel covenant check` for details")
        covenants = [c.covenant for c in checked.covenants if c.covenant.in_force(now.date())]
        producer = KafkaFeedProducer(client_settings())
        known = municipalities(ReferenceData.load(paths.reference))
        key_path = keys or default_keys_path()
        FileKeyStore.open(key_path)  # a version 1 key file is migrated here
        with _engine(database) as engine:
            signer = hub_signer(key_path, required=False)
            audit = open_hub_store(database, paths.state, signer)
            try:
                done = publish_month(
                    month=month,
                    recipient=recipient,
                    covenants=covenants,
                    municipalities=known,
                    store=SqlCoverageStore(engine),
                    audit=audit,
                    producer=producer,
                    now=now,
                    threshold=threshold,
                )
            finally:
                audit.close()
    except (SchakelError, OSError, TimeoutError) as error:
        _fail(str(error) or error.__class__.__name__)
    typer.echo(
        f"published coverage {month} to feed.{recipient}: exchange {done.exchange_id} "
        f"({'new' if done.new else 'already audited, produced again'}), "
        f"{done.municipalities} municipalities, {done.suppressed_cells} cells suppressed"
    )
