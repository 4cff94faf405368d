"""``schakel reid``: re-identification on request, with four eyes (AVG art. 4(5)).

``request`` files a request to reveal one pseudonym a recipient received under a rule with
``reidentify: on-request``; ``approve`` / ``reject`` are for a second, different, authorised
user; ``show`` reveals the value once to the requester, on standard output only; ``list``
shows requests without values. Users are the web workplace's users (``schakel users add``) and
sign in with their password, asked for hidden or read with ``--password-stdin`` — never a
command-line argument. Every step is audited (:mod:`services.reid.workflow`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from services.cli.audit import DatabaseOption

if TYPE_CHECKING:
    from services.reid.workflow import Reidentification
    from services.web.users import User

app = typer.Typer(
    help="Re-identification on request: request, approve or reject (four eyes), show once.",
    no_args_is_help=True,
)

AsOption = Annotated[str, typer.Option("--as", help="Your user name (schakel users add).")]
IdArgument = Annotated[str, typer.Argument(help="The request id (schakel reid list).")]
PasswordStdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read your password from standard input.")
]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help="Key store with the pseudonym keys (default: $SCHAKEL_KEYS, else ./var/keys.json).",
        dir_okay=False,
        show_default=False,
    ),
]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


@contextmanager
def _workflow(database: str | None, keys: Path | None) -> Iterator[Reidentification]:
    """The workflow on the audit database, audited into the hub's hash-chained store."""
    from services.audit.hub_store import hub_signer, open_hub_store
    from services.config import Paths
    from services.core.covenant.loader import load_files
    from services.core.errors import SchakelError
    from services.core.pseudonyms import Pseudonymiser
    from services.database.engine import make_engine
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore
    from services.reid.workflow import Reidentification
    from services.web.users import UserStore

    paths = Paths.from_env()
    loaded = load_files(paths.covenants, demo=paths.demo)
    if loaded.problems:
        _fail("the covenant files have problems. Fix: run `schakel covenant check` first.")
    try:
        key_path = keys or default_keys_path()
        key_store = FileKeyStore.open(key_path)
        audit = open_hub_store(database, paths.state, hub_signer(key_path, required=False))
    except SchakelError as error:
        _fail(str(error))
    engine = make_engine(database)
    try:
        UserStore(engine).create_schema()
        flow = Reidentification(
            engine, audit, Pseudonymiser(key_store), [c.covenant for c in loaded.covenants]
        )
        flow.create_schema()
        yield flow
    finally:
        audit.close()
        engine.dispose()


def _sign_in(flow: Reidentification, name: str, password_stdin: bool) -> User:
    from services.web.users import UserStore

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password for {name}", hide_input=True, err=True)
    user = UserStore(flow.engine).authenticate(name, password)
    if user is None:
        _fail(
            "wrong user name or password. Fix: check both; users are added with "
            "`schakel users add`."
        )
    return user


@contextmanager
def _refusals() -> Iterator[None]:
    """Turn a refused step into ``error: …`` and exit code 1 (messages never hold a value)."""
    from services.core.errors import SchakelError

    try:
        yield
    except SchakelError as error:
        _fail(str(error))


@app.command()
def request(
    user: AsOption,
    recipient: Annotated[str, typer.Option("--recipient", help="The recipient you act for.")],
    covenant: Annotated[str, typer.Option("--covenant", help="The covenant id.")],
    pseudonym: Annotated[str, typer.Option("--pseudonym", help="The pseudonym to reveal.")],
    purpose: Annotated[str, typer.Option("--purpose", help="Why the value is needed.")],
    case: Annotated[str, typer.Option("--case", help="The case reference.")],
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """File a request to reveal one pseudonym; a second user must approve it."""
    with _workflow(database, keys) as flow, _refusals():
        made = flow.request(
            _sign_in(flow, user, password_stdin),
            recipient=recipient,
            covenant_id=covenant,
            pseudonym=pseudonym,
            purpose=purpose,
            case_ref=case,
        )
    typer.echo(
        f"Request {made.id} filed ({made.kind}); expires {made.expires_at.isoformat()}. "
        f"A second authorised user approves it: schakel reid approve {made.id} --as NAME"
    )


@app.command()
def approve(
    request_id: IdArgument,
    user: AsOption,
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """Approve a request filed by someone else."""
    with _workflow(database, keys) as flow, _refusals():
        done = flow.approve(request_id, _sign_in(flow, user, password_stdin))
    typer.echo(f"Request {done.id} approved; {done.requester} can now show it once.")


@app.command()
def reject(
    request_id: IdArgument,
    user: AsOption,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the requester.")],
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """Reject a request filed by someone else."""
    with _workflow(database, keys) as flow, _refusals():
        done = flow.reject(request_id, _sign_in(flow, user, password_stdin), reason)
    typer.echo(f"Request {done.id} rejected.")


@app.command()
def show(
    request_id: IdArgument,
    user: AsOption,
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """Reveal the value of your approved request: once, on standard output only."""
    with _workflow(database, keys) as flow, _refusals():
        revealed = flow.reveal(request_id, _sign_in(flow, user, password_stdin))
    typer.echo(f"{revealed.kind} of request {revealed.request_id} (shown once):", err=True)
    sys.stdout.write(revealed.value + "\n")
    sys.stdout.flush()


@app.command("list")
def list_requests(
    user: Annotated[
        str | None,
        typer.Option("--as", help="Only requests you filed, decided or may decide now."),
    ] = None,
    password_stdin: PasswordStdinOption = False,
    database: DatabaseOption = None,
    keys: KeysOption = None,
) -> None:
    """List requests, newest first, tab-separated (never values)."""
    from services.reid.model import State
    from services.reid.workflow import may_decide

    columns = ("id", "state", "requester", "recipient", "covenant", "kind", "case", "expires")
    with _workflow(database, keys) as flow:
        requests = flow.listing()
        now = flow.now()
        if user is not None:
            me = _sign_in(flow, user, password_stdin)
            requests = [
                r
                for r in requests
                if me.name in (r.requester, r.decided_by)
                or (
                    r.state is State.REQUESTED
                    and not r.expired(now)
                    and may_decide(me, r.covenant_id)
                )
            ]
    typer.echo("\t".join(columns))
    for r in requests:
        row = (r.id, r.status(now), r.requester, r.recipient, r.covenant_id, r.kind, r.case_ref)
        typer.echo("\t".join((*row, r.expires_at.isoformat(timespec="minutes"))))
