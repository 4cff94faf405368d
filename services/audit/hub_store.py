"""The audit store as the hub runs it: hash-chained, checkpoints signed and witnessed.

One place decides where the witness lives (``$SCHAKEL_AUDIT_WITNESS``, default
``$SCHAKEL_STATE_DIR/audit-witness.jsonl``), so the router workers that write and the
``schakel audit verify`` that checks agree without configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.audit.checkpoint import CheckpointPolicy, KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.engine import make_engine
from services.audit.store import SqlAuditStore
from services.audit.witness import WITNESS_ENV, FileWitness
from services.core.keys import KeyStore


def witness_path(state_dir: Path) -> Path:
    configured = os.environ.get(WITNESS_ENV, "").strip()
    return Path(configured) if configured else state_dir / "audit-witness.jsonl"


def open_hub_store(url: str | None, keys: KeyStore, state_dir: Path) -> SqlAuditStore:
    """A store that chains every record and signs a checkpoint every 1,000 records or 60 s."""
    checkpointer = Checkpointer(
        KeyStoreSigner(keys), FileWitness(witness_path(state_dir)), CheckpointPolicy()
    )
    store = SqlAuditStore(make_engine(url), checkpointer)
    store.create_schema()
    return store
