"""What the gateway needs from the broker, as two small protocols.

:class:`Producer` sends one record and returns only once the broker acknowledged it;
:class:`FeedSource` reads a recipient's feed topic from a vector of partition offsets,
waiting up to ``wait_s`` for something new. :mod:`services.gateway.kafka` implements both on
aiokafka, :mod:`services.gateway.testing` in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Placed:
    """Where the broker put an acknowledged record."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class FeedRecord:
    partition: int
    offset: int
    value: bytes


@dataclass(frozen=True, slots=True)
class FeedBatch:
    """Records read, and the next offset of every partition of the topic after them."""

    records: list[FeedRecord]
    positions: dict[int, int]


class Producer(Protocol):
    async def send(self, topic: str, key: bytes, value: bytes) -> Placed:
        """Produce one record; return when the broker acknowledged it (raise if it did not)."""
        ...


class FeedSource(Protocol):
    async def read(
        self, topic: str, positions: Mapping[int, int], *, limit: int, wait_s: float
    ) -> FeedBatch:
        """Up to ``limit`` records of ``topic`` from ``positions`` (partitions not named start
        at their beginning), waiting up to ``wait_s`` when there are none yet. Raises
        :class:`~services.gateway.errors.GatewayError` for a topic that does not exist."""
        ...

    async def acknowledge(self, topic: str, group: str, positions: Mapping[int, int]) -> None:
        """Commit ``positions`` as consumer group ``group``'s offsets of ``topic``: the
        recipient has read everything before them (the hub's outbox counts it consumed)."""
        ...
