"""An in-memory :class:`TopicAdmin` for tests that need topic administration but no broker.

:class:`MemoryTopicAdmin` behaves like :class:`KafkaTopicAdmin` against a correct broker —
same validation, same errors, same results — and the same behaviour tests run against both
(tests/broker/test_topics.py). Two extras stand in for what a real broker does on its own:
:meth:`MemoryTopicAdmin.append` advances a partition's end offset as a produce would, and
:meth:`MemoryTopicAdmin.lose_data` forgets everything as a restarted memory-only broker does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Self

from services.broker.errors import BrokerError
from services.broker.topics import (
    TopicConfigs,
    check_spec,
    check_topic_name,
    is_internal_topic,
    too_few_partitions,
    unknown_topic,
)


class MemoryTopicAdmin:
    """Topics and their end offsets held in a dict; see the module docstring."""

    def __init__(self) -> None:
        self._ends: dict[str, list[int]] = {}
        self._configs: dict[str, dict[str, str]] = {}
        self.closed = False

    def ensure_topics(
        self, spec: Mapping[str, int], configs: TopicConfigs | None = None
    ) -> list[str]:
        check_spec(spec)
        for topic, want in spec.items():
            if topic in self._ends and len(self._ends[topic]) < want:
                raise too_few_partitions(topic, len(self._ends[topic]), want)
        created = sorted(topic for topic in spec if topic not in self._ends)
        for topic in created:
            self._ends[topic] = [0] * spec[topic]
        for topic, config in (configs or {}).items():
            if topic in spec:
                self._configs.setdefault(topic, {}).update(config)
        return created

    def topic_config(self, topic: str, key: str) -> str | None:
        self._partitions_of(topic)
        return self._configs.get(topic, {}).get(key)

    def list_topics(self) -> list[str]:
        return sorted(topic for topic in self._ends if not is_internal_topic(topic))

    def partitions(self, topic: str) -> int:
        return len(self._partitions_of(topic))

    def delete_topics(self, topics: Iterable[str]) -> None:
        names = set(topics)
        for topic in names:
            check_topic_name(topic)
        for topic in names:
            self._ends.pop(topic, None)
            self._configs.pop(topic, None)

    def end_offsets(self, topic: str) -> dict[int, int]:
        return dict(enumerate(self._partitions_of(topic)))

    def append(self, topic: str, partition: int, records: int = 1) -> int:
        """Record that ``records`` records were produced to ``partition``; the new end offset."""
        ends = self._partitions_of(topic)
        if not 0 <= partition < len(ends):
            raise BrokerError(f"topic {topic!r} has no partition {partition} (it has {len(ends)})")
        if records < 0:
            raise BrokerError(f"cannot append {records} records")
        ends[partition] += records
        return ends[partition]

    def lose_data(self) -> None:
        """Forget every topic and record, as a memory-only broker does when it restarts."""
        self._ends.clear()
        self._configs.clear()

    def _partitions_of(self, topic: str) -> list[int]:
        check_topic_name(topic)
        try:
            return self._ends[topic]
        except KeyError:
            raise unknown_topic(topic) from None

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
