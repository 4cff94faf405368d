"""``schakel covenant``: check covenant files before they take effect."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from services.cli.output import console, print_problems
from services.config import Paths, check_covenants
from services.core.covenant.checker import CheckedRule
from services.stacking.config_files import stacking_problems

app = typer.Typer(help="Check and inspect covenant files.", no_args_is_help=True)


@app.command("check")
def check_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Covenant files or folders (default: covenants/).")
    ] = None,
    schemas: Annotated[Path | None, typer.Option(help="Folder of signal JSON Schemas.")] = None,
    today: Annotated[
        str | None, typer.Option(help="Check as of this date (YYYY-MM-DD), e.g. before a renewal.")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Report every problem with file, line and a fix hint; exit code 1 on any error."""
    defaults = Paths.from_env()
    day = date.fromisoformat(today) if today else date.today()
    registry, _, result = check_covenants(
        paths or list(defaults.covenants),
        schemas or defaults.schemas,
        defaults.reference,
        today=day,
    )
    result.problems.extend(  # the stacking rule (covenants/stacking/) and its purpose
        stacking_problems(paths or list(defaults.covenants), result.covenants, registry)
    )
    if output == "json":
        typer.echo(
            orjson.dumps(
                {
                    "ok": result.ok,
                    "covenants": [c.covenant.key for c in result.covenants],
                    "plain_identifiers": [_plain(checked) for checked in result.plain_rules],
                    "problems": [
                        {
                            "file": p.file,
                            "line": p.line,
                            "column": p.column,
                            "severity": p.severity,
                            "message": p.message,
                            "hint": p.hint,
                        }
                        for p in result.problems
                    ],
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
    else:
        out = console()
        print_problems(result.problems, out)
        if result.plain_rules:
            out.print(
                f"Identifiers disclosed in plain by {len(result.plain_rules)} rule(s):",
                markup=False,
            )
            for checked in result.plain_rules:
                item = _plain(checked)
                out.print(
                    f"  {item['file']}:{item['line']}: {item['covenant']}/{item['rule']}: "
                    f"{', '.join(checked.plain_fields)} to {', '.join(checked.rule.to)} "
                    f"(legal basis: {item['legal_basis']})",
                    markup=False,
                    highlight=False,
                )
        errors, warnings = len(result.errors), len(result.problems) - len(result.errors)
        verdict = "[green]OK[/green]" if result.ok else "[red]FAILED[/red]"
        out.print(
            f"{verdict}: {len(result.covenants)} covenant version(s), {len(result.rules)} valid rule(s); "
            f"{errors} error(s), {warnings} warning(s)"
        )
    if not result.ok:
        raise typer.Exit(1)


def _plain(checked: CheckedRule) -> dict[str, Any]:
    """A rule that discloses identifiers in the clear, as the checker lists it."""
    declared = checked.rule.plain_identifiers
    return {
        "covenant": checked.loaded.covenant.key,
        "rule": checked.rule.id,
        "file": checked.loaded.file,
        "line": checked.loaded.line("rules", checked.index),
        "to": list(checked.rule.to),
        "fields": list(checked.plain_fields),
        "legal_basis": declared.legal_basis if declared else None,
    }


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of covenant files (published as schemas/covenant.schema.json)."""
    from services.core.covenant.jsonschema import covenant_json_schema

    typer.echo(orjson.dumps(covenant_json_schema(), option=orjson.OPT_INDENT_2).decode())
