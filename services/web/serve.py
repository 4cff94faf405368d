"""Running the web workplace with uvicorn, for ``schakel up`` or on its own.

The cookie secret is kept in the state directory (``web-secret``, mode 0600, created on first
use), so sessions survive a restart and no secret lives in the code or the environment.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from services.audit.hub_store import hub_witness
from services.broker.settings import KafkaSettings
from services.core.errors import SchakelError
from services.core.keys import KeyStore
from services.reid.workflow import Reidentification
from services.riec.cases import CaseFiles
from services.riec.plan import BarrierPlan
from services.web.app import create_web_app
from services.web.context import WebSettings
from services.web.index_lag import KafkaIndexLag, no_kafka

log = logging.getLogger("schakel.web")
SECRET_FILE = "web-secret"  # noqa: S105 (a file name, not a secret)
DEFAULT_PORT = 8470


def state_secret(state_dir: Path) -> bytes:
    """The web cookie secret of ``state_dir``, made (32 random bytes, mode 0600) if missing."""
    path = state_dir / SECRET_FILE
    try:
        secret = path.read_bytes()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_bytes(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secret)
    return secret


def serve(
    engine: Engine,
    keys: KeyStore,
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    secure_cookies: bool = False,
    reid: Reidentification | None = None,
    riec: CaseFiles | None = None,
    plan: BarrierPlan | None = None,
    kafka: KafkaSettings | None = None,
) -> None:
    """Serve the workplace on ``host:port`` until interrupted (blocks); with ``reid`` (on
    ``engine``) the re-identification pages too, with ``riec`` the RIEC analysts' pages, with
    ``plan`` the barrier plan; with ``kafka`` the integrity page says how far the audit index
    is behind the audit log."""
    app = web_app(
        engine,
        keys,
        state_dir,
        secure_cookies=secure_cookies,
        reid=reid,
        riec=riec,
        plan=plan,
        kafka=kafka,
    )
    if riec is not None and riec.handover is not None:
        # hand-overs a crash left staged are finished (the same signals, sent once)
        threading.Thread(target=resume_handovers, args=(riec,), daemon=True).start()
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def resume_handovers(riec: CaseFiles) -> None:
    """Finish the hand-overs a previous process left staged; one that fails stays staged
    (the case page offers to finish it), a failure is logged by its type only."""
    try:
        finished = riec.resume_handovers()
    except (SchakelError, SQLAlchemyError) as error:
        log.warning("staged hand-overs not resumed: %s", type(error).__name__)
        return
    if finished:
        log.info("finished %d hand-over(s) a previous run left staged", finished)


def web_app(
    engine: Engine,
    keys: KeyStore,
    state_dir: Path,
    *,
    secure_cookies: bool = False,
    reid: Reidentification | None = None,
    riec: CaseFiles | None = None,
    plan: BarrierPlan | None = None,
    kafka: KafkaSettings | None = None,
) -> FastAPI:
    """The workplace as :func:`serve` runs it: the cookie secret of ``state_dir`` and the
    hub's witness (:func:`~services.audit.hub_store.hub_witness`), so the integrity page and
    ``/metrics`` verify against the same checkpoints as ``schakel audit verify``; the audit
    index's lag read from ``kafka`` (unknown without it)."""
    settings = WebSettings(secret=state_secret(state_dir), secure_cookies=secure_cookies)
    index_lag = KafkaIndexLag(kafka) if kafka is not None else no_kafka
    return create_web_app(
        engine,
        keys,
        settings,
        reid,
        riec,
        plan,
        witness=hub_witness(state_dir),
        index_lag=index_lag,
    )
