"""The audit store as the hub runs it: hash-chained, checkpoints signed and witnessed.

One place decides where the witness lives (``$SCHAKEL_AUDIT_WITNESS``, default
``$SCHAKEL_STATE_DIR/audit-witness.jsonl``) and where the writers' signing key comes from (the
signing key file, :mod:`services.keys.signing_file`), so the router workers that write, the
web workplace and ``schakel audit verify`` that check agree without configuration.

Only the writers of the audit log sign checkpoints: the router and stacking workers open the
store with :func:`hub_signer`. The web workplace writes audit records too (re-identification
steps, refused sign-ins) but gets no signer: its records are chained like any other and come
under the writers' next checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path

from services.audit.checkpoint import CheckpointPolicy, CheckpointSigner, KeyStoreSigner
from services.audit.checkpointer import Checkpointer
from services.audit.store import SqlAuditStore
from services.audit.witness import WITNESS_ENV, FileWitness
from services.database.engine import make_engine
from services.keys import default_signing_key_path
from services.keys.signing_file import SigningKeyFile


def witness_path(state_dir: Path) -> Path:
    configured = os.environ.get(WITNESS_ENV, "").strip()
    return Path(configured) if configured else state_dir / "audit-witness.jsonl"


def hub_witness(state_dir: Path) -> FileWitness:
    """The hub's checkpoint witness (see :func:`witness_path`)."""
    return FileWitness(witness_path(state_dir))


def hub_signer(keys_path: Path | None = None, *, required: bool = True) -> CheckpointSigner | None:
    """The audit writer's checkpoint signer: the signing key file
    (:func:`~services.keys.default_signing_key_path` of ``keys_path``). Without ``required``,
    ``None`` when there is no such file (an operator's command on a host without it)."""
    path = default_signing_key_path(keys_path)
    if not required and not path.exists():
        return None
    return KeyStoreSigner(SigningKeyFile.open(path))


def open_hub_store(
    url: str | None, state_dir: Path, signer: CheckpointSigner | None
) -> SqlAuditStore:
    """The hub's store on ``url``, schema upgraded. With a ``signer`` (the writers) it signs a
    checkpoint every 1,000 records or 60 s and appends it to the witness; without, it only
    chains its records."""
    witness = hub_witness(state_dir) if signer is not None else None
    checkpointer = Checkpointer(signer, witness, CheckpointPolicy())
    store = SqlAuditStore(make_engine(url), checkpointer)
    store.create_schema()
    return store
