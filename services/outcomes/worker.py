"""Run the outcomes worker process: wire the dependencies, then run the loop until SIGTERM.

Configuration comes from the environment like the router's (SCHAKEL_KAFKA_BOOTSTRAP or the
running hub, SCHAKEL_DATABASE_URL, SCHAKEL_KEYS, SCHAKEL_COVENANTS, SCHAKEL_STATE_DIR), so
``schakel up`` starts it as a supervised child and an operator can run it elsewhere. Covenant
changes are picked up while it runs (the router's policy source).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from services.audit.hub_store import hub_signer, open_hub_store
from services.audit.store import SqlAuditStore
from services.config import Loaded, Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.database.engine import make_engine
from services.hub.state import client_settings
from services.keys import default_keys_path
from services.keys.file_store import FileKeyStore
from services.outcomes.errors import OutcomeError
from services.outcomes.loop import OutcomeLoop, OutcomeLoopConfig
from services.outcomes.store import SqlOutcomeStore
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic

log = logging.getLogger("schakel.outcomes")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Worker:
    """The outcomes worker, wired and ready to run (stores open, checkpoint signer loaded)."""

    loop: OutcomeLoop
    audit: SqlAuditStore
    store: SqlOutcomeStore
    topics: list[str]

    def close(self) -> None:
        """Sign a last checkpoint and close the stores."""
        try:
            self.audit.checkpoint()
        finally:
            self.audit.close()
            self.store.close()


def build_worker(*, batch_max: int = 1000, clock: Clock = utc_now) -> Worker:
    """Wire the worker from the environment: the key file, the covenants, the audit store as a
    writer (it signs checkpoints with the signing key file beside the key file and appends
    them to the witness; it migrates the database, 0010 and 0011 included) and the outcome
    store. Nothing is read from Kafka yet."""
    paths = Paths.from_env()
    keys = FileKeyStore.open(default_keys_path())
    pseudonymiser = Pseudonymiser(keys)

    def load(today: date) -> Loaded:
        return load_policy(
            paths.covenants, paths.schemas, paths.reference, pseudonymiser,
            today=today, demo=paths.demo,
        )  # fmt: skip

    source = PolicySource(load, paths.covenants, lambda: clock().date())
    audit = open_hub_store(None, paths.state, hub_signer())
    store = SqlOutcomeStore(make_engine(None))
    store.create_schema()
    topics = [signals_topic(p) for p in sorted(source.current.policy.suppliers)]
    loop = OutcomeLoop(
        client_settings(),
        store,
        audit,
        source,
        pseudonymiser,
        OutcomeLoopConfig(topics=topics, batch_max=batch_max),
        clock=clock,
    )
    return Worker(loop, audit, store, topics)


def run_worker(*, batch_max: int = 1000) -> None:
    """Start the outcomes worker and block until it stops (SIGTERM/SIGINT, or a crash)."""
    worker = build_worker(batch_max=batch_max)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.info("outcomes worker: %d topic(s)", len(worker.topics))
    try:
        asyncio.run(_main(worker.loop))
    except OutcomeError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        worker.close()
        s = worker.loop.stats
        log.info(
            "outcomes worker stopped: %d signals, %d indexed, %d outcomes, %d returned, "
            "%d held, %d withheld",
            s.signals, s.indexed, s.outcomes, s.delivered, s.held, s.withheld,
        )  # fmt: skip


async def _main(loop: OutcomeLoop) -> None:
    running = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        running.add_signal_handler(sig, stop.set)
    await loop.start()
    task = asyncio.create_task(loop.run())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    await loop.stop()
    stopper.cancel()
    if task.done():
        task.result()  # a crash propagates: the supervisor restarts the worker
    else:
        await task
