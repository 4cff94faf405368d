"""``read_committed`` reads that survive a broker listing aborted transactions long ended.

A fetch response lists the aborted transactions of each partition as (producer id, first
offset). The client skips every transactional batch of that producer from the first offset on
until it meets the transaction's abort marker. Kafka lists only the aborted transactions the
fetched range overlaps. noida-db 0.2.3 lists every aborted transaction of the partition,
whatever the fetch offset. A consumer that fetches from past an abort marker is told of that
transaction, never meets its marker, and skips every later committed transaction of the same
producer: after a router was killed mid-transaction (its restart aborts the open transaction
and goes on with the same producer id), the audit indexer, the router's audit tail and every
feed reader that fetched past the marker dropped everything that router wrote after it
(found by ``tests/router/test_workers_kafka.py``; ``tests/broker/test_aborted.py`` shows it
on the bare broker).

:func:`drop_ended_aborts` wraps the consumer's fetch client and mends each response that
brought records (the client reads no aborted list without them). A producer has one
transaction open at a time, so of its listed transactions that began before the fetch offset
only the latest can still be open there; the earlier ones are dropped as they are. The latest
is dropped if its producer wrote a transaction marker between its first offset and the fetch
offset: a ``read_uncommitted`` look-up reads back from the fetch offset (a window of
:data:`WINDOW` offsets, each further one eight times wider, down to the first offset at most),
as the nearest marker is usually a few batches back. Otherwise it spans the fetch offset, as
Kafka lists it, and stays. A consumer remembers per partition and producer the marker it found,
so it looks up once per producer and abort, whatever the number of aborts listed: noida never
forgets one, and its fetches ignore ``max_bytes``, so a look-up reads from where it starts to
the end of the partition.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

log = logging.getLogger(__name__)

READ_COMMITTED = 1
OFFSET_OUT_OF_RANGE = 1
LOOKUP_BYTES = 1 << 20
"""Bytes per look-up fetch, on a broker that honours it."""
WINDOW = 1024
"""Offsets before the fetch offset a look-up reads first."""

Ended = dict[tuple[str, int, int], tuple[int, int]]
"""(topic, partition, producer id) -> (first offset of an aborted transaction of it, offset of
a marker of that producer at or after that transaction's abort marker)."""


class _EndedAbortsClient:
    """The consumer's client, with every read_committed fetch response mended (see module)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.ended: Ended = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def send(self, node_id: int, request: Any, **kwargs: Any) -> Any:
        response = await self._client.send(node_id, request, **kwargs)
        if isinstance(request, FetchRequest) and request._isolation_level == READ_COMMITTED:
            try:
                await self._mend(node_id, request, response)
            except KafkaError:
                raise
            except Exception as exc:
                # aiokafka retries a fetch that failed with a KafkaError (after its backoff);
                # anything else would end its fetch task, and a response left unmended could
                # skip committed records: the fetch fails and is sent again
                raise KafkaError(f"aborted-transaction look-up failed: {exc!r}") from exc
        return response

    async def _mend(self, node_id: int, request: Any, response: Any) -> None:
        version = int(response.API_VERSION)
        if version < 4:
            return  # no isolation, no aborted list
        at = 4 if version == 4 else 5  # v5 put log_start_offset before the aborted list
        fetched = {(topic, int(p[0])): int(p[1]) for topic, parts in request.topics for p in parts}
        mended = []
        for topic, partitions in response.topics:
            rows = []
            for row in partitions:
                offset = fetched.get((topic, int(row[0])))
                if row[at] and row[-1] and offset is not None:
                    kept = await self._kept(node_id, topic, int(row[0]), row[at], offset)
                    rows.append((*row[:at], kept, *row[at + 1 :]))
                else:
                    rows.append(row)  # an empty fetch: the client reads no aborted list
            mended.append((topic, rows))
        response.topics = mended

    async def _kept(
        self, node_id: int, topic: str, partition: int, aborted: Sequence[Any], offset: int
    ) -> list[Any]:
        """The listed aborted transactions a fetch from ``offset`` may meet."""
        latest: dict[int, int] = {}  # producer -> its latest first offset before the fetch
        for producer, first in aborted:
            if first < offset and first > latest.get(producer, -1):
                latest[producer] = first
        open_at = {
            (producer, first)
            for producer, first in latest.items()
            if not await self._ended(node_id, topic, partition, producer, first, offset)
        }
        return [e for e in aborted if e[1] >= offset or (e[0], e[1]) in open_at]

    async def _ended(
        self, node_id: int, topic: str, partition: int, producer: int, first: int, offset: int
    ) -> bool:
        """Whether ``producer``'s transaction from ``first`` ended before ``offset``."""
        known = self.ended.get((topic, partition, producer))
        if known is not None and known[0] == first and known[1] < offset:
            return True
        marker = await self._marker_before(node_id, topic, partition, producer, first, offset)
        if marker is None:
            return False  # spans the fetch offset: the client must skip the rest of it
        self.ended[(topic, partition, producer)] = (first, marker)
        return True

    async def _marker_before(
        self, node_id: int, topic: str, partition: int, producer: int, first: int, upto: int
    ) -> int | None:
        """Offset of a marker of ``producer`` in [first, upto), the nearest window first."""
        end, width = upto, WINDOW
        while end > first:  # at most ~20 windows: each is eight times wider
            start = max(first, end - width)
            marker = await self._marker_in(node_id, topic, partition, producer, start, end)
            if marker is not None:
                return marker
            end, width = start, width * 8
        return None

    async def _marker_in(
        self, node_id: int, topic: str, partition: int, producer: int, start: int, end: int
    ) -> int | None:
        """Offset of ``producer``'s first marker in [start, end), or None."""
        position = start
        while position < end:  # each fetch moves on, or this returns
            request = FetchRequest(
                0, 1, LOOKUP_BYTES, 0, [(topic, [(partition, position, LOOKUP_BYTES)])]
            )
            response = await self._client.send(node_id, request)
            error, log_start, records = _partition_of(response, topic, partition)
            if error == OFFSET_OUT_OF_RANGE and log_start is not None and log_start > position:
                position = log_start  # retention deleted the start: look from what is left
                continue
            if error != 0 or records is None:
                raise KafkaError(
                    f"aborted-transaction look-up on {topic}[{partition}] at {position}: "
                    f"error code {error}"
                )
            moved = position
            while records.has_next():
                batch = records.next_batch()
                if batch is None or batch.base_offset >= end:
                    break
                if batch.is_control_batch and batch.producer_id == producer:
                    return int(batch.base_offset)
                moved = max(moved, int(batch.next_offset))
            if moved == position:
                return None  # nothing more to read
            position = moved
        return None


def _partition_of(
    response: Any, topic: str, partition: int
) -> tuple[int, int | None, MemoryRecords | None]:
    """(error code, log start offset if the version has it, records) of one partition."""
    version = int(response.API_VERSION)
    for name, partitions in response.topics:
        for row in partitions:
            if name == topic and int(row[0]) == partition:
                log_start = int(row[4]) if version >= 5 else None
                return int(row[1]), log_start, MemoryRecords(bytes(row[-1] or b""))
    return -1, None, None


def drop_ended_aborts(consumer: Any) -> bool:
    """Mend every ``read_committed`` fetch of the started aiokafka ``consumer`` (see the module
    docstring). Returns whether it could; a consumer reading uncommitted needs nothing."""
    fetcher = getattr(consumer, "_fetcher", None)
    client = getattr(fetcher, "_client", None)
    if fetcher is None or client is None:
        log.warning(
            "this aiokafka has no fetcher client to mend aborted-transaction lists in (start "
            "the consumer first): on noida-db a read_committed consumer can skip committed data"
        )
        return False
    if getattr(fetcher, "_isolation_level", READ_COMMITTED) != READ_COMMITTED:
        return True
    if not isinstance(client, _EndedAbortsClient):
        fetcher._client = _EndedAbortsClient(client)
    return True
