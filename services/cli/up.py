"""``schakel up``: start the hub on this machine."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from services.cli.output import console


def up_command(
    demo: Annotated[bool, typer.Option(help="Run simulated Noord-Holland partners.")] = False,
    workers: Annotated[int, typer.Option(min=1, max=16, help="Router worker processes.")] = 1,
    rate: Annotated[
        float, typer.Option(min=0.1, max=10_000, help="Demo signals per second.")
    ] = 20.0,
    web_port: Annotated[
        int, typer.Option(min=0, max=65535, help="Web workplace port on 127.0.0.1 (0: off).")
    ] = 8470,
    gateway_port: Annotated[
        int,
        typer.Option(
            min=0, max=65535, help="Gateway (ingest and feed API) port on 127.0.0.1 (0: off)."
        ),
    ] = 8471,
) -> None:
    """Start broker (embedded unless SCHAKEL_KAFKA_BOOTSTRAP is set), topics, audit store and
    router workers; print where everything is; stop cleanly on Ctrl-C."""
    from services.broker.quiet_logs import BrokerOutage, install
    from services.hub.up import HubOptions, run_hub

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    logging.getLogger("kafka").setLevel(logging.ERROR)  # client chatter, not hub events
    outage = BrokerOutage()  # one line while the broker is away, not ten per 100 ms
    install(outage)
    run_hub(
        HubOptions(
            demo=demo,
            workers=workers,
            rate=rate,
            web_port=web_port or None,
            gateway_port=gateway_port or None,
        ),
        console(),
        outage=outage,
    )
