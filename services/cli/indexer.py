"""``schakel indexer``: run the audit indexer (``schakel up`` starts one for you)."""

from __future__ import annotations


def indexer_command() -> None:
    """Read the audit topic and write the audit records, their hash chain and signed
    checkpoints to the audit database (the single writer; run exactly one per hub).

    Configuration comes from the environment: SCHAKEL_KAFKA_BOOTSTRAP (+ SASL/TLS settings),
    SCHAKEL_DATABASE_URL, SCHAKEL_KEYS (the signing key file beside it signs checkpoints),
    SCHAKEL_METRICS_PORT (metrics, /healthz and /readyz with the index lag).
    """
    from services.indexer.worker import run_indexer

    run_indexer()
