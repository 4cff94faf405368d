"""``schakel covenant``: check covenant files before they take effect, list them, register keys."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from services.cli.covenant_keys import add_key_command
from services.cli.output import console, print_problems, table
from services.config import Paths, check_covenants
from services.core.covenant.checker import CheckedRule, CheckResult
from services.stacking.config_files import stacking_problems

app = typer.Typer(
    help="Check and inspect covenant files; register partner keys.", no_args_is_help=True
)
app.command("add-key")(add_key_command)

DemoOption = Annotated[
    bool,
    typer.Option(
        "--demo",
        help="As a hub in demo mode sees them: add the demo's TEST keys (covenants/demo/) and "
        "accept them (default: SCHAKEL_DEMO).",
    ),
]


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
    demo: DemoOption = False,
) -> None:
    """Report every problem with file, line and a fix hint; exit code 1 on any error.

    Without --demo (as every deployment runs) a TEST key registered anywhere is an error."""
    defaults = Paths.from_env()
    day = date.fromisoformat(today) if today else date.today()
    registry, _, result = check_covenants(
        paths or list(defaults.covenants),
        schemas or defaults.schemas,
        defaults.reference,
        today=day,
        demo=demo or defaults.demo,
    )
    result.problems.extend(  # the stacking rule (covenants/stacking/) and its purpose
        stacking_problems(paths or list(defaults.covenants), result.covenants, registry)
    )
    if output == "json":
        typer.echo(
            orjson.dumps(
                {
                    "ok": result.ok,
                    "demo": result.demo,
                    "covenants": [c.covenant.key for c in result.covenants],
                    "plain_identifiers": [_plain(checked) for checked in result.plain_rules],
                    "illustrations": {
                        c.covenant.key: c.covenant.illustration
                        for c in result.covenants
                        if c.covenant.illustration
                    },
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
        _print_mode(result, out)
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


def _print_mode(result: CheckResult, out: Console) -> None:
    """Say which covenants are illustrations, and whether TEST keys were accepted."""
    for item in result.covenants:
        if item.covenant.illustration:
            out.print(
                f"{item.covenant.key}: ILLUSTRATION, not the text of a signed covenant "
                f"({item.file})",
                style="bold",
                markup=False,
            )
    if result.demo:
        files = ", ".join(result.demo_key_files) if result.demo_key_files else "none found"
        out.print(
            f"demo mode: the demo partners' TEST keys are accepted (from {files}); a "
            "deployment never runs in demo mode",
            style="yellow",
            markup=False,
        )


@app.command("list")
def list_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Covenant files or folders (default: covenants/).")
    ] = None,
    today: Annotated[str | None, typer.Option(help="As of this date (YYYY-MM-DD).")] = None,
    demo: DemoOption = False,
) -> None:
    """List the covenant versions: validity, in force today, DPIA, and whether each is an
    illustration (with what it is modelled on)."""
    defaults = Paths.from_env()
    day = date.fromisoformat(today) if today else date.today()
    _, _, result = check_covenants(
        paths or list(defaults.covenants),
        defaults.schemas,
        defaults.reference,
        today=day,
        demo=demo or defaults.demo,
    )
    out = console()
    rows = table(
        f"Covenant versions on {day}",
        ["version", "title", "valid", "in force", "DPIA", "illustration"],
    )
    for item in sorted(result.covenants, key=lambda c: c.covenant.key):
        cov = item.covenant
        dpia = (
            f"{cov.dpia.reference}" + (f" ({cov.dpia.day})" if cov.dpia.day else "")
            if cov.dpia
            else "none"
        )
        rows.add_row(
            cov.key,
            cov.title,
            f"{cov.valid.from_} to {cov.valid.until or 'open'}",
            "yes" if cov.in_force(day) else "no",
            dpia,
            "YES" if cov.illustration else "no",
        )
    out.print(rows)
    for item in result.covenants:
        if item.covenant.illustration:
            out.print(
                f"{item.covenant.key} is an ILLUSTRATION: {item.covenant.illustration}",
                markup=False,
            )
    if result.problems:
        errors = len(result.errors)
        out.print(
            f"{errors} error(s), {len(result.problems) - errors} warning(s): "
            "run `schakel covenant check` for details",
            markup=False,
        )


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of covenant files (published as schemas/covenant.schema.json)."""
    from services.core.covenant.jsonschema import covenant_json_schema

    typer.echo(orjson.dumps(covenant_json_schema(), option=orjson.OPT_INDENT_2).decode())
