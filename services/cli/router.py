"""``schakel router``: run one router worker (``schakel up`` starts these for you)."""

from __future__ import annotations

from typing import Annotated

import typer


def router_command(
    group: Annotated[
        str, typer.Option(help="Consumer group shared by all router workers.")
    ] = "schakel-router",
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Records per batch.")] = 500,
    instance: Annotated[
        str | None,
        typer.Option(help="Stable worker name (static group membership: fast restarts)."),
    ] = None,
    web_port: Annotated[
        int | None, typer.Option(help="Serve Faust's web endpoints on 127.0.0.1:PORT.")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="info, warning or error.")] = "info",
) -> None:
    """Consume every partner's signals topic, apply the covenants, write feeds and audit.

    Configuration comes from the environment: SCHAKEL_KAFKA_BOOTSTRAP (+ SASL/TLS settings),
    SCHAKEL_DATABASE_URL, SCHAKEL_KEYS, SCHAKEL_COVENANTS. Covenant files are reloaded when
    they change, or on SIGHUP.
    """
    from services.router.worker import run_worker

    run_worker(
        group_id=group, instance_id=instance, batch_max=batch, web_port=web_port, loglevel=loglevel
    )
