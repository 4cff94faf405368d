"""The gateway's broker side on aiokafka: an acknowledged producer and a feed reader.

:class:`KafkaProducer` sends with ``acks=all`` and returns only when the broker acknowledged
the record (bounded by ``timeout_s``, so an unknown topic or a broker that is down is an
error, not a hung request). :class:`KafkaFeedSource` reads a feed topic without a consumer
group: each read assigns every partition, seeks to the cursor's offsets and fetches, so no
state lives in the gateway and any gateway instance can serve the next page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import anyio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from services.broker.aborted import drop_ended_aborts
from services.broker.fetching import SIDE_PATH_WAIT_MS, fetch_settings, hold_empty_fetches
from services.broker.settings import KafkaSettings
from services.gateway.errors import GatewayError, UnknownTopic
from services.gateway.ports import FeedBatch, FeedRecord, Placed

DEFAULT_TIMEOUT_S = 15.0
Fetched = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
FETCH_STEP_S = 0.05
"""How often a read waiting for records that are there looks whether only transaction
markers and aborted records were (noida: a router's feed ends each transaction in a marker)."""


class KafkaProducer:
    """An acknowledged producer; ``start`` before use, ``stop`` after (or ``async with``)."""

    def __init__(self, settings: KafkaSettings, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect; aiokafka binds its client to the running event loop, so only here."""
        self._producer = AIOKafkaProducer(
            acks="all",
            linger_ms=2,
            request_timeout_ms=int(self._timeout_s * 1000),
            **self._settings.client_kwargs_aiokafka(),
        )
        try:
            await asyncio.wait_for(self._producer.start(), self._timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._producer.stop()
            self._producer = None
            raise GatewayError(
                f"cannot connect the gateway's producer to Kafka ({exc.__class__.__name__}). "
                "Fix: start the hub (schakel up) or check SCHAKEL_KAFKA_BOOTSTRAP."
            ) from None

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, topic: str, key: bytes, value: bytes) -> Placed:
        if self._producer is None:
            raise GatewayError("the gateway's producer is not started; start() it first")
        try:
            meta = await asyncio.wait_for(
                self._producer.send_and_wait(topic, value, key=key), self._timeout_s
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise GatewayError(
                f"the broker did not acknowledge a record for {topic} "
                f"({exc.__class__.__name__}); retry later"
            ) from None
        return Placed(int(meta.partition), int(meta.offset))

    async def ping(self) -> None:
        """Return when a broker answered a metadata request (the readiness probe's question)."""
        if self._producer is None:
            raise GatewayError("the gateway's producer is not started; start() it first")
        try:
            await asyncio.wait_for(self._producer.client.fetch_all_metadata(), self._timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise GatewayError(
                f"no broker answered a metadata request ({exc.__class__.__name__})"
            ) from None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


class KafkaFeedSource:
    """Reads feed topics page by page; one short-lived consumer per read."""

    def __init__(self, settings: KafkaSettings, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s

    async def read(
        self, topic: str, positions: Mapping[int, int], *, limit: int, wait_s: float
    ) -> FeedBatch:
        consumer = AIOKafkaConsumer(
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # never a feed message of an open transaction
            max_poll_records=limit,
            request_timeout_ms=int(self._timeout_s * 1000),
            **fetch_settings(SIDE_PATH_WAIT_MS),
            **self._settings.client_kwargs_aiokafka(),
        )
        try:
            await _start(consumer, self._timeout_s)
            hold_empty_fetches(consumer, SIDE_PATH_WAIT_MS)
            drop_ended_aborts(consumer)  # noida lists aborts long ended
            return await self._read(consumer, topic, positions, limit, wait_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise GatewayError(
                f"cannot read {topic} from Kafka ({exc.__class__.__name__}); retry later"
            ) from None
        finally:
            await _close(consumer)

    async def acknowledge(self, topic: str, group: str, positions: Mapping[int, int]) -> None:
        if not positions:
            return
        consumer = AIOKafkaConsumer(
            group_id=group,
            enable_auto_commit=False,
            request_timeout_ms=int(self._timeout_s * 1000),
            **self._settings.client_kwargs_aiokafka(),
        )
        offsets = {TopicPartition(topic, p): o for p, o in positions.items()}
        try:
            await _start(consumer, self._timeout_s)
            consumer.assign(list(offsets))
            await asyncio.wait_for(consumer.commit(offsets), self._timeout_s)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise GatewayError(
                f"cannot commit the offsets of group {group} ({exc.__class__.__name__})"
            ) from None
        finally:
            await _close(consumer)

    async def _read(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        positions: Mapping[int, int],
        limit: int,
        wait_s: float,
    ) -> FeedBatch:
        if topic not in await consumer.topics():
            raise UnknownTopic(f"topic {topic!r} does not exist; the hub creates it at start-up")
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        after: dict[int, int] = {}
        for tp in tps:
            begin, end = starts[tp], ends[tp]
            after[tp.partition] = min(max(positions.get(tp.partition, begin), begin), end)
            consumer.seek(tp, after[tp.partition])
        fetched = await self._fetch(consumer, tps, ends, limit, wait_s)
        records = sorted(
            (
                FeedRecord(tp.partition, message.offset, message.value or b"")
                for tp, messages in fetched.items()
                for message in messages
            ),
            key=lambda r: (r.partition, r.offset),
        )
        for tp in tps:  # past transaction markers and aborted records too, not only records
            after[tp.partition] = max(after[tp.partition], await consumer.position(tp))
        for record in records:
            after[record.partition] = max(after[record.partition], record.offset + 1)
        return FeedBatch(records, after)

    async def _fetch(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        ends: Mapping[TopicPartition, int],
        limit: int,
        wait_s: float,
    ) -> Fetched:
        """While something is there past the positions, give the fetch up to the timeout to
        bring it; what is there may be only transaction markers and aborted records, which
        bring nothing but move the positions: once all are at the end, long-poll ``wait_s``."""
        deadline = time.monotonic() + self._timeout_s
        while await _behind(consumer, ends):
            left = deadline - time.monotonic()
            if left <= 0:
                return {}
            fetched: Fetched = await consumer.getmany(
                *tps, timeout_ms=int(min(left, FETCH_STEP_S) * 1000), max_records=limit
            )
            if fetched:
                return fetched
        fetched = await consumer.getmany(*tps, timeout_ms=int(wait_s * 1000), max_records=limit)
        return fetched


async def _behind(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    """Whether some partition's position is before its end."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _start(consumer: AIOKafkaConsumer, timeout_s: float) -> None:
    """Start ``consumer`` within ``timeout_s``; a cancellation (a reader that disconnects)
    waits until it has started, as a start cut short leaks the bootstrap connection, which
    no stop closes."""
    with anyio.CancelScope(shield=True):
        await asyncio.wait_for(consumer.start(), timeout_s)


async def _close(consumer: AIOKafkaConsumer) -> None:
    """Stop ``consumer`` even when the request that used it is being cancelled (a reader that
    disconnects): an interrupted stop leaves its connections open."""
    with anyio.CancelScope(shield=True):
        await consumer.stop()
