"""The router as a Faust application: Faust owns lifecycle and the worker; the loop is a service.

Dependencies (Kafka settings, audit store, policy source, clock) are passed in; nothing here
runs at import time.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
from mode import Service

from services.audit.model import AuditStore
from services.broker.settings import KafkaSettings
from services.router.loop import Clock, LoopConfig, RouterLoop
from services.router.policy_source import PolicySource

log = logging.getLogger("schakel.router")

APP_ID = "schakel-router-host"
"""Faust's own group id; the router loop's consumer group is LoopConfig.group_id."""


def create_app(
    kafka: KafkaSettings,
    store: AuditStore,
    policies: PolicySource,
    config: LoopConfig,
    *,
    clock: Clock,
    datadir: Path,
    web_port: int | None = None,
) -> tuple[faust.App, RouterLoop]:
    """A Faust app hosting one :class:`RouterLoop`; returns both (the loop for its stats)."""
    app = faust.App(
        APP_ID,
        broker=kafka.faust_broker_url(),
        broker_credentials=kafka.faust_credentials(),
        datadir=str(datadir),
        store="memory://",
        topic_allow_declare=False,  # the hub creates its topics explicitly at start-up
        topic_disable_leader=True,
        broker_session_timeout=config.session_timeout_ms / 1000,
        web_enabled=web_port is not None,
        web_bind="127.0.0.1",  # never 0.0.0.0
        web_port=web_port or 6066,
        web_in_thread=False,
    )
    # The loop has its own batched consumer; Faust's per-message consumer stays off.
    app.producer_only = True
    router = RouterLoop(kafka, store, policies, config, clock=clock)

    class RouterService(Service):
        """Runs the router loop for the app's lifetime; a crash in the loop stops the worker."""

        async def on_start(self) -> None:
            await router.start()
            self.add_future(self._run())

        async def _run(self) -> None:
            try:
                await router.run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # unrecoverable (store or broker failed after retries): stop without committing
                log.exception("router loop failed; stopping the worker without committing")
                await router.stop()
                await app.crash(exc)

        async def on_stop(self) -> None:
            await router.stop()

    app.service(RouterService)
    return app, router


def worker_arguments(loglevel: str = "info") -> dict[str, Any]:
    """Faust worker options that avoid two measured traps (see docs/architecture.md).

    The default ``-l warn`` sets the *root* logger to DEBUG inside Faust's worker (about 14 % of
    CPU building debug records); ``info`` does not.
    """
    return {"loglevel": loglevel, "quiet": True}
