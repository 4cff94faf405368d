"""``schakel users``: the people who may sign in to the privacy officer's workplace.

``add`` creates a user with a role and, for a privacy officer, the covenants and/or partners
they may see; ``remove``, ``password`` and ``scope`` change them; ``list`` shows them. The
password is asked for (twice, hidden) or read from standard input with ``--password-stdin``;
it is never a command-line argument, where it would end up in the shell history and the
process list. Every change is written to the audit log (result ``changed``, action
``user-add`` … ``user-scope``, with who made it), where privacy officers find it.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from services.cli.audit import DatabaseOption

if TYPE_CHECKING:
    from services.web.users import User, UserStore

app = typer.Typer(
    help="Manage the users of the privacy officer's web workplace.", no_args_is_help=True
)

CovenantOption = Annotated[
    list[str] | None,
    typer.Option("--covenant", help="A covenant id a privacy officer may see (repeatable)."),
]
PartnerOption = Annotated[
    list[str] | None,
    typer.Option(
        "--partner",
        help="A partner whose records (as source or recipient) a privacy officer may see "
        "(repeatable).",
    ),
]
PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def _password(from_stdin: bool) -> str:
    from services.web.passwords import MIN_LENGTH

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_LENGTH:
        _fail(f"the password must be at least {MIN_LENGTH} characters.")
    return password


@contextmanager
def _users(database: str | None) -> Iterator[UserStore]:
    from services.database.engine import make_engine
    from services.web.users import UserStore

    engine = make_engine(database)
    try:
        store = UserStore(engine)
        store.create_schema()
        yield store
    finally:
        engine.dispose()


def _change(database: str | None, change: str, act: Callable[[UserStore], User]) -> User:
    """Make the change, then write its audit record; either failing is an error (exit 1)."""
    from services.audit.store import SqlAuditStore
    from services.core.errors import SchakelError
    from services.web.users import UserError, user_change_record

    with _users(database) as users:
        try:
            user = act(users)
        except UserError as error:
            _fail(str(error))
    record = user_change_record(
        change, user, actor=f"cli:{getpass.getuser()}", at=datetime.now(UTC)
    )
    try:
        audit = SqlAuditStore.open(database)
        try:
            audit.record([record], [])
        finally:
            audit.close()
    except SchakelError as error:
        _fail(f"the change was made but could not be audited: {error}")
    return user


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="The name to sign in with.")],
    role: Annotated[
        str,
        typer.Option("--role", help="privacy-officer, covenant-manager, admin or riec-analyst."),
    ],
    covenant: CovenantOption = None,
    partner: PartnerOption = None,
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
) -> None:
    """Add a user. A privacy officer sees only the given covenants and partners (both given:
    records that match both); without either, nothing until a scope is added. A RIEC analyst
    works on what its RIEC (--partner, e.g. riec-nh) received under the given covenants."""
    from services.web.users import describe_scope

    password = _password(password_stdin)
    user = _change(
        database,
        "add",
        lambda users: users.add(
            name, password, role, covenants=covenant or (), partners=partner or ()
        ),
    )
    typer.echo(f"Added {user.name} ({user.role}); sees {describe_scope(user)}.")


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="The user to remove.")],
    database: DatabaseOption = None,
) -> None:
    """Remove a user; their sessions end at once."""
    user = _change(database, "remove", lambda users: users.remove(name))
    typer.echo(f"Removed {user.name} ({user.role}); signed out everywhere.")


@app.command()
def password(
    name: Annotated[str, typer.Argument(help="The user whose password to change.")],
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
) -> None:
    """Set a new password; the user's sessions end (they sign in again with it)."""
    new = _password(password_stdin)
    user = _change(database, "password", lambda users: users.set_password(name, new))
    typer.echo(f"Password of {user.name} changed; their sessions ended.")


@app.command()
def scope(
    name: Annotated[str, typer.Argument(help="The privacy officer whose scope to set.")],
    covenant: CovenantOption = None,
    partner: PartnerOption = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Take the whole scope away (sees nothing).")
    ] = False,
    database: DatabaseOption = None,
) -> None:
    """Replace what a privacy officer sees: the given covenants and/or partners."""
    from services.web.users import describe_scope

    if clear == bool(covenant or partner):
        _fail("give --covenant and/or --partner (the new scope), or --clear; not both.")
    user = _change(
        database,
        "scope",
        lambda users: users.set_scope(name, covenants=covenant or (), partners=partner or ()),
    )
    typer.echo(f"{user.name} now sees {describe_scope(user)}.")


@app.command("list")
def list_users(database: DatabaseOption = None) -> None:
    """List users, their roles and what they see."""
    from services.web.users import describe_scope

    with _users(database) as users:
        for name, _ in users.names():
            user = users.get(name)
            if user is not None:
                typer.echo(f"{user.name}\t{user.role}\t{describe_scope(user)}")
