"""Witnesses: copies of the checkpoints kept outside the audit database.

Whoever can write the database can delete the newest records *and* their checkpoints; the
chain that is left is then consistent. A checkpoint kept elsewhere still names the cut-off
head, so the verifier reports the truncation. :class:`FileWitness` appends one JSON object per
line (:meth:`~services.audit.checkpoint.Checkpoint.to_json`) to a file that should live on
another disk, host or write-once medium than the database; the in-memory double is
:class:`services.audit.testing.MemoryWitness`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import orjson

from services.audit.checkpoint import Checkpoint
from services.audit.errors import AuditStoreError

WITNESS_ENV = "SCHAKEL_AUDIT_WITNESS"
"""Environment variable with the path of the checkpoint witness file."""


class Witness(Protocol):
    """Somewhere outside the database that keeps every checkpoint the hub made."""

    def append(self, checkpoint: Checkpoint) -> None:
        """Keep ``checkpoint``; raise :class:`AuditStoreError` if it could not be kept."""
        ...

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint kept, in the order they were appended."""
        ...


class FileWitness:
    """An append-only JSON-lines file of checkpoints (created on the first append)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def append(self, checkpoint: Checkpoint) -> None:
        line = orjson.dumps(checkpoint.to_json(), option=orjson.OPT_SORT_KEYS) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(descriptor, line)
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        except OSError as error:
            raise AuditStoreError(
                f"cannot append a checkpoint to the witness file {self.path}: {error.strerror}. "
                "Fix: make the file and its directory writable for the hub, or point "
                f"{WITNESS_ENV} elsewhere."
            ) from None

    def checkpoints(self) -> list[Checkpoint]:
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as error:
            raise AuditStoreError(
                f"cannot read the witness file {self.path}: {error.strerror}. "
                "Fix: check the path and that it is readable."
            ) from None
        found: list[Checkpoint] = []
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"line {number} of the witness file {self.path}"
            try:
                data = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise AuditStoreError(
                    f"{where} is not JSON. Fix: restore the file from a good copy."
                ) from None
            if not isinstance(data, dict):
                raise AuditStoreError(f"{where} is not a JSON object. Fix: restore the file.")
            found.append(Checkpoint.from_json(data, where))
        return found
