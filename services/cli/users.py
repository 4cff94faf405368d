"""``schakel users``: the people who may sign in to the privacy officer's workplace.

``add`` creates a user with a role and, for a privacy officer, the covenants and/or partners
they may see. The password is asked for (twice, hidden) or read from standard input with
``--password-stdin``; it is never a command-line argument, where it would end up in the shell
history and the process list.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from services.cli.audit import DatabaseOption

app = typer.Typer(
    help="Manage the users of the privacy officer's web workplace.", no_args_is_help=True
)


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The name to sign in with.")],
    role: Annotated[
        str, typer.Option("--role", help="privacy-officer, covenant-manager or admin.")
    ],
    covenant: Annotated[
        list[str] | None,
        typer.Option("--covenant", help="A covenant id a privacy officer may see (repeatable)."),
    ] = None,
    partner: Annotated[
        list[str] | None,
        typer.Option(
            "--partner",
            help="A partner whose records (as source or recipient) a privacy officer may see "
            "(repeatable).",
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Add a user. A privacy officer sees only the given covenants and partners (both given:
    records that match both); without either, nothing until a scope is added."""
    from services.audit.engine import make_engine
    from services.web.passwords import MIN_LENGTH
    from services.web.users import UserError, UserStore

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_LENGTH:
        typer.echo(f"error: the password must be at least {MIN_LENGTH} characters.", err=True)
        raise typer.Exit(code=1)
    engine = make_engine(database)
    try:
        store = UserStore(engine)
        store.create_schema()
        user = store.add(name, password, role, covenants=covenant or (), partners=partner or ())
    except UserError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        engine.dispose()
    scope = ", ".join(sorted(user.covenants | user.partners)) or "everything"
    if user.role == "privacy-officer" and not (user.covenants or user.partners):
        scope = "nothing yet (no --covenant or --partner)"
    typer.echo(f"Added {user.name} ({user.role}); sees {scope}.")


@app.command("list")
def list_users(database: DatabaseOption = None) -> None:
    """List users and their roles."""
    from services.audit.engine import make_engine
    from services.web.users import UserStore

    engine = make_engine(database)
    try:
        store = UserStore(engine)
        store.create_schema()
        for name, role in store.names():
            typer.echo(f"{name}\t{role}")
    finally:
        engine.dispose()
