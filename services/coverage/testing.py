"""In-memory double of :class:`~services.coverage.store.SqlCoverageStore` and of the feed
producer, for tests."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.core.coverage.facts import Fact
from services.core.coverage.release import CellKey


class MemoryCoverageStore:
    """Facts keyed by (source, signal id), like the SQL table."""

    def __init__(self) -> None:
        self._facts: dict[tuple[str, str], Fact] = {}
        self._lock = threading.Lock()

    def add(self, facts: Sequence[Fact]) -> int:
        with self._lock:
            new = 0
            for fact in facts:
                key = (fact.origin, fact.signal_id)
                if key not in self._facts:
                    self._facts[key] = fact
                    new += 1
            return new

    def counts(self, months: Sequence[str]) -> Counter[CellKey]:
        wanted = set(months)
        with self._lock:
            return Counter(
                (f.municipality, f.month, f.category)
                for f in self._facts.values()
                if f.month in wanted
            )

    def months(self) -> list[str]:
        with self._lock:
            return sorted({f.month for f in self._facts.values()})


@dataclass
class MemoryFeedProducer:
    """Records what was sent; ``fail`` makes every send raise (a broker that is down)."""

    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    fail: bool = False

    def send(self, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
        if self.fail:
            raise ConnectionError("the test producer is set to fail")
        self.sent.append((topic, key, value))
        return 0, len(self.sent) - 1
