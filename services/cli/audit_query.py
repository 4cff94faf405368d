"""``schakel audit search|report|subject``: the privacy officer's queries on the command line.

The same queries as the web workplace (:mod:`services.audit.queries`,
:mod:`services.audit.report`), unscoped — whoever can run this can read the database anyway —
but logged all the same: each run writes an access-log row for ``cli:<os user>``. Output is a
Rich table, or ``--format json`` / ``--format csv`` for programs. A subject's identifier is
read from a prompt or standard input, never from the command line (shell history, process
list), and is neither printed nor logged.
"""

from __future__ import annotations

import csv
import getpass
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer

from services.cli.audit import DatabaseOption, KeysOption

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.audit.queries import Entry, Period


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOption = Annotated[Format, typer.Option("--format", help="table, json or csv.")]
FromOption = Annotated[
    str | None, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).", show_default=False)
]
ToOption = Annotated[
    str | None, typer.Option("--to", help="Last day, inclusive (YYYY-MM-DD).", show_default=False)
]
COLUMNS = (
    "seq",
    "time",
    "result",
    "source",
    "recipient",
    "type",
    "covenant",
    "rule",
    "article",
    "reason",
)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def _engine(database: str | None) -> Iterator[Engine]:
    from services.database.engine import make_engine
    from services.database.errors import DatabaseError
    from services.database.tables.web import metadata

    try:
        engine = make_engine(database, existing=True)
    except DatabaseError as error:
        _fail(str(error))
    try:
        metadata.create_all(engine)  # the access-log table, if this database has none yet
        yield engine
    finally:
        engine.dispose()


def _log(engine: Engine, route: str, detail: Mapping[str, Any]) -> None:
    from services.web.access_log import AccessLog

    AccessLog(engine).write(f"cli:{getpass.getuser()}", route, detail)


def _period(since: str | None, until: str | None) -> Period:
    from services.web.forms import FormError, period

    values = {"from": since or "", "to": until or ""}
    try:
        return period(values)
    except FormError as error:
        _fail(f"--from/--to: {error}")


def _row(entry: Entry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "record_id": entry.record_id,
        "time": entry.timestamp.isoformat(),
        "result": entry.result,
        "source": entry.origin,
        "recipient": entry.recipient,
        "type": entry.signal_type,
        "covenant": entry.covenant_id,
        "rule": entry.rule_id,
        "article": entry.article,
        "reason": _reason(entry),
    }


def _reason(entry: Entry) -> str | None:
    """Why a record was withheld or rejected (as the record page shows it); None otherwise."""
    reason = entry.body.get("reason")
    return reason if isinstance(reason, str) and reason else None


def _emit(title: str, columns: Sequence[str], rows: list[dict[str, Any]], fmt: Format) -> None:
    """Rows as JSON or CSV (every key), or as a Rich table of ``columns``."""
    if fmt is Format.json:
        typer.echo(orjson.dumps(rows).decode())
        return
    if fmt is Format.csv:
        names = list(rows[0]) if rows else list(columns)
        writer = csv.DictWriter(sys.stdout, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    from services.cli.output import console, table

    shown = table(title, columns)
    for row in rows:
        shown.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    console().print(shown)


def search(
    database: DatabaseOption = None,
    since: FromOption = None,
    until: ToOption = None,
    partner: Annotated[str | None, typer.Option(help="Source partner.")] = None,
    recipient: Annotated[str | None, typer.Option(help="Recipient.")] = None,
    covenant: Annotated[str | None, typer.Option(help="Covenant id.")] = None,
    rule: Annotated[str | None, typer.Option(help="Rule id.")] = None,
    result: Annotated[str | None, typer.Option(help="delivered, withheld or rejected.")] = None,
    signal_type: Annotated[str | None, typer.Option("--type", help="Signal type.")] = None,
    limit: Annotated[int, typer.Option(help="Records per page (1-500).")] = 50,
    cursor: Annotated[
        int | None, typer.Option(help="Show records below this seq (the next page).")
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Search audit records, newest first."""
    from services.audit.queries import MAX_LIMIT, Filters, Scope
    from services.audit.queries import search as run

    if not 1 <= limit <= MAX_LIMIT:
        _fail(f"--limit must be between 1 and {MAX_LIMIT}")
    filters = Filters(
        _period(since, until), partner, recipient, covenant, rule, result, signal_type
    )
    with _engine(database) as engine:
        page = run(engine, filters, Scope.everything(), cursor=cursor, limit=limit)
        _log(engine, "cli/search", {**filters.as_log(), "rows": len(page.entries)})
    _emit("Audit records", COLUMNS, [_row(e) for e in page.entries], fmt)
    if page.next_cursor is not None and fmt is Format.table:
        typer.echo(f"More: --cursor {page.next_cursor}", err=True)


def report(
    covenant: Annotated[str, typer.Argument(help="Covenant id.")],
    database: DatabaseOption = None,
    since: FromOption = None,
    until: ToOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Count a covenant's decisions per rule, recipient, month and result, with the most
    frequent reasons for withholding and every identifier disclosed in the clear."""
    from services.audit.queries import Scope
    from services.audit.report import covenant_report

    with _engine(database) as engine:
        counted = covenant_report(engine, covenant, _period(since, until), Scope.everything())
        _log(engine, "cli/report", {"covenant": covenant, "from": since, "to": until})
    if fmt is Format.json:
        typer.echo(orjson.dumps(counted.to_json()).decode())
        return
    sections = {
        "rule": counted.by_rule,
        "recipient": counted.by_recipient,
        "month": counted.by_month,
        "result": counted.by_result,
        "withheld_reason": counted.withheld_reasons,
        "plain_disclosure": counted.plain_disclosures,  # identifiers disclosed in the clear
    }
    rows = [
        {"section": section, "key": key, "#count": count}
        for section, items in sections.items()
        for key, count in items
    ]
    _emit(f"{covenant}: {counted.total} decisions", ("section", "key", "#count"), rows, fmt)


def subject(
    kind: Annotated[str, typer.Option("--kind", help="Identifier kind, e.g. ean, address.")],
    identifier_stdin: Annotated[
        bool, typer.Option("--identifier-stdin", help="Read the identifier from standard input.")
    ] = False,
    database: DatabaseOption = None,
    keys: KeysOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Every record about one identifier, oldest first (access requests, AVG art. 15)."""
    from services.audit.queries import Scope, subject_lookup
    from services.core.errors import SchakelError
    from services.core.identifiers import normalise
    from services.core.pseudonyms import INTERNAL, Pseudonymiser
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore

    if identifier_stdin:
        identifier = sys.stdin.readline().strip()
    else:
        identifier = typer.prompt("Identifier", hide_input=True)
    try:
        canonical = normalise(kind, identifier)
        store = FileKeyStore.open(keys or default_keys_path())
        pseudonyms = Pseudonymiser(store).all_pseudonyms(INTERNAL, kind, canonical)
    except SchakelError as error:
        _fail(str(error))
    with _engine(database) as engine:
        entries = subject_lookup(engine, pseudonyms, Scope.everything())
        detail = {"kind": kind, "pseudonyms": len(pseudonyms), "rows": len(entries)}
        _log(engine, "cli/subject", detail)
    rows = [{**_row(e), "fields": ", ".join(sorted(e.body.get("fields") or {}))} for e in entries]
    _emit(f"{len(rows)} records about this {kind}", (*COLUMNS, "fields"), rows, fmt)


def register(app: typer.Typer) -> None:
    """Attach ``search``, ``report`` and ``subject`` to ``app`` (the ``schakel audit`` group)."""
    app.command("search")(search)
    app.command("report")(report)
    app.command("subject")(subject)


__all__ = ["register", "report", "search", "subject"]
