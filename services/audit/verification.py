"""The one verification of a hub's audit database, the same for every place that reports it.

``schakel audit verify``, the web workplace's integrity page and JSON API, and the
``schakel_audit_verification_*`` metrics all call :func:`verify_store` (the web and the metrics
through one :class:`StoreVerifier`), so they cannot disagree about a log: each reads the
database's records with their searchable columns, the subject index, the checkpoints of the
database *and of the witness* (a copy outside the database: without it a log whose newest
records and checkpoints were cut off looks intact), and the purge anchors, and hands them to
:func:`services.audit.verify.verify` with the public signing keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from services.audit.checkpoint import Checkpoint
from services.audit.reading import IndexedReading
from services.audit.store import SqlAuditStore
from services.audit.verify import Verification, verify
from services.audit.witness import Witness
from services.core.keys import KeyStore
from services.core.progress import Progress, silent


def public_keys(keys: KeyStore) -> dict[str, bytes]:
    """Key id -> raw public key of every checkpoint signing key ``keys`` lists (current and
    retired): what a verifier trusts."""
    return {key.key_id: key.public_bytes for key in keys.public_signing_keys()}


def verify_store(
    store: SqlAuditStore,
    public_keys: Mapping[str, bytes],
    *,
    witness: Witness | None = None,
    checkpoints: Iterable[Checkpoint] = (),
    progress: Progress = silent,
) -> Verification:
    """Verify the whole log of ``store``: chain, checkpoints (the database's, the
    ``witness``'s and any further ``checkpoints``), purge anchors, searchable columns and
    subject index. Read-only; tells ``progress`` how many records it has checked."""
    witnessed = witness.checkpoints() if witness is not None else []
    reading = IndexedReading(store)
    return verify(
        reading.records(),
        [*store.checkpoints(), *witnessed, *checkpoints],
        public_keys,
        store.purges(),
        reading.orphans(),
        progress=progress,
    )


class StoreVerifier:
    """:func:`verify_store` as a callable without arguments, for the web workplace and the
    metrics: the store, the key store whose public keys to trust and the witness are fixed
    when it is made. A key store that can ``reload()`` (the key file) is re-read at each run,
    so checkpoints signed after a rotation of the signing key are not taken for forgeries."""

    def __init__(self, store: SqlAuditStore, keys: KeyStore, witness: Witness | None) -> None:
        self.store = store
        self.keys = keys
        self.witness = witness

    def __call__(self) -> Verification:
        reload = getattr(self.keys, "reload", None)  # the file store has it, doubles need not
        if callable(reload):
            reload()
        return verify_store(self.store, public_keys(self.keys), witness=self.witness)
