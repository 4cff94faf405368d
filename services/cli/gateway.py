"""``schakel gateway``: serve the HTTPS gateway, print its OpenAPI document, manage tokens.

``schakel gateway`` serves on 127.0.0.1:8471 (``--host``/``--port``) against the Kafka cluster
of the environment or the running hub, with its tables in the audit database.
``schakel gateway token issue --partner NAME`` (or ``--recipient NAME``) prints a new API
token once; only its hash is stored. ``revoke TOKEN_ID`` and ``list`` manage them.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated

import orjson
import typer

from services.cli.audit import DatabaseOption
from services.cli.output import console, table

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.gateway.tokens import Kind, TokenStore

app = typer.Typer(
    help="The HTTPS gateway: POST /v1/signals for partners, GET /v1/feed for recipients.",
    invoke_without_command=True,
)
token_app = typer.Typer(help="API tokens of partners and recipients.", no_args_is_help=True)
app.add_typer(token_app, name="token")

PartnerOption = Annotated[
    str | None, typer.Option("--partner", help="A partner (publishes signals).", show_default=False)
]
RecipientOption = Annotated[
    str | None,
    typer.Option("--recipient", help="A recipient (reads its feed).", show_default=False),
]


@app.callback()
def gateway(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8471,
    rate: Annotated[
        float, typer.Option(min=0.01, help="Requests per second per partner/recipient.")
    ] = 20.0,
    burst: Annotated[int, typer.Option(min=1, help="Requests allowed at once.")] = 40,
    database: DatabaseOption = None,
) -> None:
    """Serve the gateway (when no sub-command is given) until Ctrl-C."""
    if ctx.invoked_subcommand is not None:
        return
    from services.config import Paths
    from services.core.errors import SchakelError
    from services.core.schema_registry import SchemaRegistry
    from services.gateway.context import GatewaySettings
    from services.gateway.serve import serve
    from services.hub.state import client_settings

    try:
        kafka = client_settings()
        engine = _engine(database)
        registry = SchemaRegistry.load(Paths.from_env().schemas)
    except SchakelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    console(stderr=True).print(f"gateway on http://{host}:{port}/v1/ (Ctrl-C stops)")
    try:
        serve(
            engine,
            kafka,
            registry,
            host=host,
            port=port,
            settings=GatewaySettings(rate=rate, burst=burst),
        )
    except SchakelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command("openapi")
def openapi_command() -> None:
    """Print the OpenAPI document (as checked in at docs/openapi.json)."""
    from services.gateway.document import openapi_document

    sys.stdout.write(openapi_document())


@token_app.command("issue")
def issue(
    partner: PartnerOption = None,
    recipient: RecipientOption = None,
    database: DatabaseOption = None,
) -> None:
    """Issue a token and print it once (store it now: only its hash is kept)."""
    kind, name = _who(partner, recipient)
    token, info = _tokens(database).issue(kind, name)
    console(stderr=True).print(
        f"token {info.token_id} for {kind} {name}; shown only now, keep it secret:", markup=False
    )
    sys.stdout.write(token + "\n")


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token id (see `list`).")],
    database: DatabaseOption = None,
) -> None:
    """Revoke a token at once."""
    if not _tokens(database).revoke(token_id):
        typer.echo(
            f"error: no unrevoked token {token_id!r}; see `schakel gateway token list`.", err=True
        )
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id}")


@token_app.command("list")
def list_tokens(
    partner: PartnerOption = None,
    recipient: RecipientOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    database: DatabaseOption = None,
) -> None:
    """List tokens (ids, owners, dates; never the tokens)."""
    kind: Kind | None = "partner" if partner else "recipient" if recipient else None
    rows = _tokens(database).list(kind, partner or recipient)
    if as_json:
        for row in rows:
            sys.stdout.buffer.write(
                orjson.dumps(
                    {
                        "token_id": row.token_id,
                        "kind": row.kind,
                        "principal": row.principal,
                        "created_at": row.created_at.isoformat(),
                        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                    }
                )
                + b"\n"
            )
        return
    out = table("gateway tokens", ["token id", "kind", "name", "issued", "revoked"])
    for row in rows:
        out.add_row(
            row.token_id,
            row.kind,
            row.principal,
            f"{row.created_at:%Y-%m-%d %H:%M}",
            f"{row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "",
        )
    console().print(out)


def _who(partner: str | None, recipient: str | None) -> tuple[Kind, str]:
    if bool(partner) == bool(recipient):
        raise typer.BadParameter("give exactly one of --partner NAME or --recipient NAME")
    return ("partner", partner) if partner else ("recipient", recipient or "")


def _engine(database: str | None) -> Engine:
    from services.database.engine import make_engine
    from services.gateway.tables import prepare_tables

    engine = make_engine(database)
    prepare_tables(engine)
    return engine


def _tokens(database: str | None) -> TokenStore:
    from services.gateway.errors import GatewayError
    from services.gateway.tokens import TokenStore

    try:
        return TokenStore(_engine(database), partial(datetime.now, UTC))
    except GatewayError as exc:
        raise typer.BadParameter(str(exc)) from None
