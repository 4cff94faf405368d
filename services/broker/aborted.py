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

:func:`drop_ended_aborts` wraps the consumer's fetch client: a listed transaction whose first
offset lies before the fetch offset is looked up once (a ``read_uncommitted`` fetch from its
first offset, to its producer's abort marker or the fetch offset, whichever comes first). If
its marker lies before the fetch offset, the entry is dropped from the response; otherwise
(the transaction spans the fetch offset, as Kafka lists it) it stays. A consumer remembers the
markers it looked up. On a broker that lists correctly, only transactions spanning a fetch
offset are looked up, and they stay.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

log = logging.getLogger(__name__)

READ_COMMITTED = 1
OFFSET_OUT_OF_RANGE = 1
LOOKUP_BYTES = 1 << 20
"""Bytes per look-up fetch (a marker usually follows its transaction's first offset closely)."""

Ended = dict[tuple[str, int, int, int], int]
"""(topic, partition, producer id, first offset) -> offset of the transaction's abort marker."""


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
        changed = False
        for topic, partitions in response.topics:
            rows = []
            for row in partitions:
                aborted = row[at]
                offset = fetched.get((topic, int(row[0])))
                if aborted and offset is not None:
                    kept = [
                        entry
                        for entry in aborted
                        if not await self._ended_before(node_id, topic, int(row[0]), entry, offset)
                    ]
                    if len(kept) != len(aborted):
                        rows.append((*row[:at], kept, *row[at + 1 :]))
                        changed = True
                        continue
                rows.append(row)
            mended.append((topic, rows))
        if changed:
            response.topics = mended

    async def _ended_before(
        self, node_id: int, topic: str, partition: int, entry: Any, offset: int
    ) -> bool:
        """Whether the aborted transaction ``entry`` (producer id, first offset) has its abort
        marker before ``offset``."""
        producer, first = int(entry[0]), int(entry[1])
        if first >= offset:
            return False
        key = (topic, partition, producer, first)
        marker = self.ended.get(key)
        if marker is None:
            marker = await self._find_marker(node_id, topic, partition, producer, first, offset)
            if marker is None:
                return False  # spans the fetch offset: the client must skip it
            self.ended[key] = marker
        return marker < offset

    async def _find_marker(
        self, node_id: int, topic: str, partition: int, producer: int, first: int, upto: int
    ) -> int | None:
        """Offset of ``producer``'s first transaction marker in [first, upto), or None."""
        position = first
        while position < upto:
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
                if batch is None:
                    break
                if batch.base_offset >= upto:
                    return None
                if batch.is_control_batch and batch.producer_id == producer:
                    # the producer's first marker after the first offset ends that transaction
                    # (a producer has one open at a time)
                    return int(batch.base_offset)
                moved = int(batch.next_offset)
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
