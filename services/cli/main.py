"""Entry point of the ``schakel`` command; each verb group lives in its own module."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="schakel",
    help="Schakel: covenant-governed information exchange for public-private partnerships.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold identifiers or key material
)


def _register() -> None:
    """Attach every verb group to ``app`` (once; imports stay lazy until the CLI runs)."""
    if app.registered_groups:
        return
    from services.cli import (
        audit,
        audit_prove,
        audit_query,
        audit_retention,
        barriers,
        covenant,
        coverage,
        demo,
        gateway,
        indexer,
        indicators,
        keys,
        maintenance,
        outcomes,
        publish,
        reid,
        replay,
        riec,
        router,
        stacking,
        status,
        subscribe,
        up,
        users,
        web,
    )

    audit_prove.register(audit.app)
    audit_query.register(audit.app)
    audit_retention.register(audit.app)
    app.add_typer(audit.app, name="audit")
    app.command("barriers")(barriers.barriers_command)
    app.add_typer(covenant.app, name="covenant")
    app.add_typer(coverage.app, name="coverage")
    app.add_typer(demo.app, name="demo")
    app.add_typer(gateway.app, name="gateway")
    app.command("indexer")(indexer.indexer_command)
    app.add_typer(indicators.app, name="indicators")
    app.add_typer(keys.app, name="keys")
    app.add_typer(outcomes.app, name="outcomes")
    app.add_typer(reid.app, name="reid")
    app.add_typer(riec.app, name="riec")
    app.add_typer(stacking.app, name="stacking")
    app.command("maintenance")(maintenance.maintenance_command)
    app.command("replay")(replay.replay_command)
    app.command("router")(router.router_command)
    app.command("up")(up.up_command)
    app.command("web")(web.web_command)
    app.command("publish")(publish.publish_command)
    app.command("subscribe")(subscribe.subscribe_command)
    app.command("status")(status.status_command)
    app.add_typer(users.app, name="users")


def main() -> None:
    from services.hub.state import HubNotRunning

    _register()
    try:
        app()
    except HubNotRunning as error:  # expected, not a bug: one line, no traceback
        typer.echo(f"error: {error}", err=True)
        raise SystemExit(1) from None
