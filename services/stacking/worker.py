"""Run the stacking worker process: wire the dependencies, then run the loop until SIGTERM.

Configuration comes from the environment like the router's (SCHAKEL_KAFKA_BOOTSTRAP,
SCHAKEL_DATABASE_URL, SCHAKEL_KEYS, SCHAKEL_COVENANTS, SCHAKEL_STATE_DIR), so ``schakel up``
starts it as a supervised child and an operator can run it elsewhere. Covenant changes are
picked up on restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

from services.audit.engine import make_engine
from services.audit.hub_store import open_hub_store
from services.broker.settings import KafkaSettings
from services.config import Paths, load_policy
from services.core.pseudonyms import Pseudonymiser
from services.core.stacking.engine import Stacker
from services.core.stacking.extract import Extractor
from services.core.stacking.purpose import StackingRules
from services.keys import default_keys_path
from services.keys.file_store import FileKeyStore
from services.router.topics import signals_topic
from services.stacking.batch import StackingStep
from services.stacking.config_files import load_stacking_config
from services.stacking.errors import StackingError
from services.stacking.loop import Signer, StackingLoop, StackingLoopConfig
from services.stacking.store import SqlStackingStore

log = logging.getLogger("schakel.stacking")


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_worker(*, batch_max: int = 1000) -> None:
    """Start the stacking worker and block until it stops (SIGTERM/SIGINT, or a crash)."""
    kafka = KafkaSettings.from_env()
    if kafka is None:
        raise SystemExit(
            "SCHAKEL_KAFKA_BOOTSTRAP is not set; start the hub with `schakel up`, or point the "
            "worker at a Kafka cluster"
        )
    paths = Paths.from_env()
    keys = FileKeyStore.open(default_keys_path())
    pseudonymiser = Pseudonymiser(keys)
    loaded = load_policy(
        list(paths.covenants), paths.schemas, paths.reference, pseudonymiser, today=utc_now().date()
    )
    if loaded.policy is None:
        raise SystemExit("covenants have errors; run `schakel covenant check`")
    config = load_stacking_config(paths.covenants)
    policy = loaded.policy
    audit = open_hub_store(None, keys, paths.state)  # migrates the database, 0005 included
    store = SqlStackingStore(make_engine(None))
    store.create_schema()
    rules = StackingRules(policy.covenants, config.purpose)
    step = StackingStep(
        loaded.registry,
        policy,
        rules,
        Extractor(config, pseudonymiser, rules.partner_kinds),
        Stacker(config, store.load()),
    )
    alerts_source = config.alert.source
    topics = [signals_topic(p) for p in sorted(policy.suppliers) if p != alerts_source]
    loop = StackingLoop(
        kafka,
        store,
        audit,
        step,
        config,
        pseudonymiser,
        StackingLoopConfig(topics=topics, batch_max=batch_max),
        clock=utc_now,
        sign=alert_signer(alerts_source),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    log.info(
        "stacking %d topic(s), %d location(s) tracked", len(topics), len(step.stacker.locations)
    )
    try:
        asyncio.run(_main(loop))
    except StackingError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        audit.checkpoint()
        audit.close()
        store.close()


KEY_FILE_ENV = "SCHAKEL_STACKING_KEY_FILE"
ALLOW_TEST_KEYS_ENV = "SCHAKEL_ALLOW_TEST_KEYS"
"""Set to 1 (``schakel up --demo`` does) to sign alerts with the demo TEST key, which anyone can
derive — never in production."""


def alert_signer(source: str) -> Signer:
    """Sign alerts with the key file in ``SCHAKEL_STACKING_KEY_FILE`` (made by ``schakel keys
    partner schakel``, its public half registered for the alert source in the covenant), or
    — only when ``SCHAKEL_ALLOW_TEST_KEYS=1`` — with the demo TEST key of the source party, which
    anyone can derive (demo only)."""
    from services.cli.partner_key import read_partner_key  # noqa: PLC0415 - key files only here
    from services.core.signing import sign  # noqa: PLC0415
    from services.demo.keys import TEST_KEY_WARNING, DemoSigner  # noqa: PLC0415

    configured = os.environ.get(KEY_FILE_ENV, "").strip()
    if not configured:
        if os.environ.get(ALLOW_TEST_KEYS_ENV, "") != "1":
            raise SystemExit(
                f"{KEY_FILE_ENV} is not set, so stacking alerts cannot be signed. Fix: make a key "
                f"with `schakel keys partner {source}`, register its public half for {source!r} "
                f"in the covenant and point {KEY_FILE_ENV} at the key file "
                f"(demo only: {ALLOW_TEST_KEYS_ENV}=1 signs with the public TEST key)"
            )
        log.warning("%s not set: alerts are signed with the %s", KEY_FILE_ENV, TEST_KEY_WARNING)
        return DemoSigner()
    key = read_partner_key(Path(configured))
    if key.partner != source:
        raise SystemExit(
            f"{KEY_FILE_ENV} holds a key of {key.partner!r}, but alerts are published as "
            f"{source!r}. Fix: make one with `schakel keys partner {source}`"
        )
    return lambda envelope: sign(envelope, key.private_key, key.key_id)


async def _main(loop: StackingLoop) -> None:
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
