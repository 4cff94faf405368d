"""Reading the whole chain out of a store, page by page, for verification and export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from services.audit.chain import ChainRecord
from services.audit.checkpoint import Checkpoint
from services.audit.index_reading import BELOW_ALL, IndexedPage

PAGE = 10_000
"""Records per read: large enough that per-query cost vanishes, small enough to stream."""

MAX_ORPHANS = 10_000
"""Orphans of the subject index kept for the findings (memory stays bounded whatever was
added to the index; one is enough to fail verification)."""


class ChainSource(Protocol):
    """A store that can hand out its hash chain (both stores can)."""

    def chain(self, *, after_seq: int = 0, limit: int = PAGE) -> list[ChainRecord]: ...

    def checkpoints(self) -> list[Checkpoint]: ...


class IndexSource(Protocol):
    """A database store that can hand out its records with what its index holds of them
    (:class:`~services.audit.store.SqlAuditStore`)."""

    def indexed_chain(
        self, *, after_seq: int = 0, limit: int = PAGE, subjects_after: int = BELOW_ALL
    ) -> IndexedPage: ...

    def index_orphans(self, *, after_seq: int, limit: int = 100) -> list[int]: ...


def chain_records(source: ChainSource, *, page: int = PAGE) -> Iterator[ChainRecord]:
    """Every record of ``source`` in ``seq`` order, read in pages of ``page`` (each page its
    own short read transaction, so a running hub is never held up)."""
    after = 0
    while chunk := source.chain(after_seq=after, limit=page):
        yield from chunk
        after = chunk[-1].seq


class IndexedReading:
    """Every record of ``source`` with its index (:meth:`records`, in ``seq`` order, page by
    page like :func:`chain_records`), and then the orphans of the subject index
    (:meth:`orphans`: those found beside the pages, and those beyond the last record — read
    when asked, so after the records)."""

    def __init__(self, source: IndexSource, *, page: int = PAGE) -> None:
        self._source = source
        self._page = page
        self._orphans: list[int] = []
        self._last = BELOW_ALL

    def records(self) -> Iterator[ChainRecord]:
        after, listed_after = 0, BELOW_ALL
        while True:
            found = self._source.indexed_chain(
                after_seq=after, limit=self._page, subjects_after=listed_after
            )
            self._orphans += found.orphans[: MAX_ORPHANS - len(self._orphans)]
            if not found.records:
                return
            yield from found.records
            after = listed_after = self._last = found.records[-1].seq

    def orphans(self) -> Iterator[int]:
        yield from self._orphans
        yield from self._source.index_orphans(after_seq=self._last)
