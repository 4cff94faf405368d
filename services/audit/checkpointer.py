"""When the audit stores make a checkpoint, and publishing it to the witness.

Both stores (SQL and memory) share this: inside their write transaction they ask
:meth:`Checkpointer.due` whether the new chain head deserves a checkpoint and, if so, store
:meth:`Checkpointer.make`'s result in the same transaction; after the commit they hand it to
:meth:`Checkpointer.committed`, which appends it to the witness. The witness is written only
after the commit, so it never names a head the database does not have; a checkpoint the
witness could not take stays pending and is appended again after the next write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from services.audit.checkpoint import Checkpoint, CheckpointPolicy, CheckpointSigner, signed
from services.audit.witness import Witness

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


class Checkpointer:
    """Checkpoint schedule, signer and witness of one store; safe to share between threads."""

    def __init__(
        self,
        signer: CheckpointSigner | None = None,
        witness: Witness | None = None,
        policy: CheckpointPolicy | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.signer = signer
        self.witness = witness
        self.policy = policy or CheckpointPolicy()
        self.clock = clock
        self._lock = threading.Lock()
        self._last: tuple[int, datetime] | None = None
        self._loaded = False
        self._pending: list[Checkpoint] = []

    @property
    def enabled(self) -> bool:
        """Whether checkpoints are made at all (only with a signer)."""
        return self.signer is not None

    @property
    def loaded(self) -> bool:
        """Whether the last stored checkpoint is known (see :meth:`load`)."""
        return self._loaded

    def load(self, last: Checkpoint | None) -> None:
        """Tell the schedule which checkpoint the store holds last (read once per store)."""
        with self._lock:
            if not self._loaded:
                self._loaded = True
                self._note(last)

    def due(self, head_seq: int, *, force: bool = False) -> bool:
        """Whether the chain head at ``head_seq`` gets a checkpoint now."""
        if self.signer is None or head_seq < 1:
            return False
        with self._lock:
            last = self._last
        if last is None:
            return True
        last_seq, last_time = last
        if head_seq <= last_seq:
            return False
        policy = self.policy
        return (
            force
            or head_seq - last_seq >= policy.every_records
            or (self.clock() - last_time).total_seconds() >= policy.every_seconds
        )

    def make(self, head_seq: int, head_hash: bytes) -> Checkpoint:
        """A checkpoint of the head, signed now (call only when :meth:`due`)."""
        signer = self.signer
        if signer is None:  # pragma: no cover - due() is False without a signer
            raise RuntimeError("Checkpointer.make called without a signer")
        return signed(signer, head_seq, head_hash, self.clock())

    def committed(self, checkpoint: Checkpoint | None) -> None:
        """After the commit: remember ``checkpoint`` and append it (and any earlier ones the
        witness missed) to the witness. Raises the witness's error; the checkpoint is then
        retried after the next write."""
        with self._lock:
            if checkpoint is not None:
                self._note(checkpoint)
                if self.witness is not None:
                    self._pending.append(checkpoint)
            if self.witness is None:
                return
            while self._pending:
                self.witness.append(self._pending[0])
                self._pending.pop(0)

    def _note(self, checkpoint: Checkpoint | None) -> None:
        if checkpoint is not None and (self._last is None or checkpoint.seq > self._last[0]):
            self._last = (checkpoint.seq, checkpoint.created_at)
