"""Reading the whole chain out of a store, page by page, for verification and export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from services.audit.chain import ChainRecord
from services.audit.checkpoint import Checkpoint

PAGE = 10_000
"""Records per read: large enough that per-query cost vanishes, small enough to stream."""


class ChainSource(Protocol):
    """A store that can hand out its hash chain (both stores can)."""

    def chain(self, *, after_seq: int = 0, limit: int = PAGE) -> list[ChainRecord]: ...

    def checkpoints(self) -> list[Checkpoint]: ...


class IndexSource(Protocol):
    """A database store that can hand out its records with what its index holds of them
    (:class:`~services.audit.store.SqlAuditStore`)."""

    def indexed_chain(self, *, after_seq: int = 0, limit: int = PAGE) -> list[ChainRecord]: ...


def chain_records(source: ChainSource, *, page: int = PAGE) -> Iterator[ChainRecord]:
    """Every record of ``source`` in ``seq`` order, read in pages of ``page`` (each page its
    own short read transaction, so a running hub is never held up)."""
    after = 0
    while chunk := source.chain(after_seq=after, limit=page):
        yield from chunk
        after = chunk[-1].seq


def indexed_records(source: IndexSource, *, page: int = PAGE) -> Iterator[ChainRecord]:
    """Like :func:`chain_records`, each record with its stored searchable columns and
    subject-index pseudonyms."""
    after = 0
    while chunk := source.indexed_chain(after_seq=after, limit=page):
        yield from chunk
        after = chunk[-1].seq
