"""``schakel maintenance``: record feed consumption and re-deliver after broker data loss."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from services.router.topics import TopicLayout

_DEFAULTS = TopicLayout()


def maintenance_command(
    interval: Annotated[
        float, typer.Option(min=0.1, max=3600.0, help="Seconds between maintenance ticks.")
    ] = 5.0,
    once: Annotated[
        bool, typer.Option("--once", help="Run one tick and exit (1 if it failed).")
    ] = False,
    redeliver: Annotated[
        bool,
        typer.Option(
            "--redeliver",
            help="Re-deliver every unconsumed outbox entry at the first tick, topics lost or not "
            "(recipients drop duplicates by exchange id).",
        ),
    ] = False,
    signal_partitions: Annotated[
        int, typer.Option(min=1, max=10_000, help="Partitions of a recreated signals topic.")
    ] = _DEFAULTS.signal_partitions,
    feed_partitions: Annotated[
        int, typer.Option(min=1, max=10_000, help="Partitions of a recreated feed topic.")
    ] = _DEFAULTS.feed_partitions,
    loglevel: Annotated[str, typer.Option(help="info, warning or error.")] = "info",
) -> None:
    """Keep deliveries whole in a deployment where routers run as separate services.

    Every INTERVAL seconds: mark the outbox entries each recipient's consumer group has
    committed past as consumed; when the broker lost topics, recreate them (with the given
    partition counts) and produce every entry not yet consumed again. Run exactly one (two
    are safe: recipients drop the duplicates by exchange id). `schakel up` does this itself.

    Configuration comes from the environment: SCHAKEL_KAFKA_BOOTSTRAP (+ SASL/TLS settings),
    SCHAKEL_DATABASE_URL, SCHAKEL_COVENANTS (which recipients and topics there are), and
    SCHAKEL_METRICS_PORT / SCHAKEL_METRICS_HOST for /metrics, /healthz and /readyz. Stops
    after the current tick on SIGTERM or SIGINT.
    """
    from services.hub.maintenance_service import ServiceOptions, run_maintenance

    level = getattr(logging, loglevel.upper(), None)
    if loglevel.lower() not in ("info", "warning", "error") or not isinstance(level, int):
        raise typer.BadParameter("--loglevel must be info, warning or error")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for chatty in ("kafka", "alembic"):  # connection-by-connection detail, every tick
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))
    layout = TopicLayout(signal_partitions=signal_partitions, feed_partitions=feed_partitions)
    options = ServiceOptions(interval_s=interval, once=once, redeliver=redeliver)
    code = run_maintenance(options, layout)
    if code:
        raise typer.Exit(code)
