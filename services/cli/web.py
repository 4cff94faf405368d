"""``schakel web``: serve the privacy officer's workplace on its own (``schakel up`` serves it
too, on 127.0.0.1); for deployments where it runs as a separate service."""

from __future__ import annotations

from typing import Annotated

import typer


def web_command(
    host: Annotated[
        str, typer.Option(help="Address to bind (0.0.0.0 only inside a container).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8470,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark cookies Secure (when served behind HTTPS).")
    ] = False,
) -> None:
    """Serve the web workplace and its /metrics, /healthz and /readyz.

    Configuration comes from the environment: SCHAKEL_DATABASE_URL, SCHAKEL_KEYS,
    SCHAKEL_COVENANTS, SCHAKEL_STATE_DIR, SCHAKEL_AUDIT_VERIFY_EVERY_S. The web needs the key
    file only (pseudonym keys, public signing keys), never the signing key file.
    """
    from datetime import UTC, datetime

    from services.audit.hub_store import open_hub_store
    from services.broker.settings import KafkaSettings
    from services.config import Paths, load_policy
    from services.core.pseudonyms import Pseudonymiser
    from services.database.engine import database_url, make_engine
    from services.hub.state import HubNotRunning, client_settings
    from services.keys import default_keys_path
    from services.keys.file_store import FileKeyStore
    from services.reid.workflow import Reidentification
    from services.riec.wiring import barrier_plan, case_files, hub_handover
    from services.web.serve import serve

    paths = Paths.from_env()
    keys = FileKeyStore.open(default_keys_path())
    loaded = load_policy(
        list(paths.covenants),
        paths.schemas,
        paths.reference,
        Pseudonymiser(keys),
        today=datetime.now(UTC).date(),
        demo=paths.demo,
    )
    if loaded.policy is None:
        raise SystemExit("covenants have errors; run `schakel covenant check`")
    url = database_url()
    engine = make_engine(url)
    audit = open_hub_store(url, paths.state, signer=None)  # the web never signs checkpoints
    covenants = loaded.policy.covenants
    flow = Reidentification(engine, audit, Pseudonymiser(keys), covenants)
    try:
        kafka: KafkaSettings | None = client_settings()
    except HubNotRunning:  # no broker: the workplace is served, hand-over and index lag are not
        kafka = None
    handover = hub_handover(keys, paths, kafka) if kafka is not None else None
    riec = case_files(engine, audit, covenants, paths, flow, handover)
    serve(
        engine,
        keys,
        paths.state,
        host=host,
        port=port,
        secure_cookies=secure_cookies,
        reid=flow,
        kafka=kafka,  # optional: without it the index lag reads "unknown"
        riec=riec,
        plan=barrier_plan(riec.workplace, paths),
    )
