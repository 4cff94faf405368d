"""Shared pieces of the metrics tests: a routed batch of demo traffic, identifier scanning."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from services.router.batch import Consumed, RoutedBatch, route_batch
from services.router.topics import signals_topic
from tests.router.helpers import NOW, policy_source, traffic

PUBLISHED_MS = int(NOW.timestamp() * 1000) - 1500
"""Kafka record timestamp of the fake records: 1.5 s before NOW."""


@dataclass(frozen=True)
class Record:
    """The parts of aiokafka's ConsumerRecord the metrics read."""

    offset: int
    timestamp: int
    value: bytes


@dataclass
class Batch:
    signals: list[dict[str, Any]]
    records: dict[TopicPartition, list[Record]]
    routed: RoutedBatch


def routed_batch(count: int = 300, seed: int = 7, broken: int = 3) -> Batch:
    """Demo traffic (plus ``broken`` malformed lines) on partition 0 of each partner's topic,
    routed through the real policy."""
    signals = traffic(count, seed=seed)
    values = [(signals_topic(str(s["source"])), orjson.dumps(s)) for s in signals]
    values += [(signals_topic("liander"), b'{"not": "a signal"') for _ in range(broken)]
    records: dict[TopicPartition, list[Record]] = {}
    consumed = []
    for topic, value in values:
        tp = TopicPartition(topic, 0)
        offset = len(records.setdefault(tp, []))
        records[tp].append(Record(offset, PUBLISHED_MS, value))
        consumed.append(Consumed(topic, 0, offset, value))
    current = policy_source().current
    return Batch(signals, records, route_batch(consumed, current.registry, current.policy, NOW))


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        yield str(value)


_DIGITS = re.compile(r"\d{4,}")


def identifiers(signals: Iterable[dict[str, Any]]) -> set[str]:
    """Every value in the signals' data, and their ids: what must never become a label."""
    found: set[str] = set()
    for signal in signals:
        found.add(str(signal["id"]))
        found.update(strings(signal["data"]))
    return found


def leaked(exposition: str, values: set[str]) -> list[str]:
    """Label values of ``exposition`` that are one of ``values`` or contain a digit run of
    one of them (an EAN, postcode or BAG id, however it was spelled)."""
    runs = {run for value in values for run in _DIGITS.findall(value.replace(" ", ""))}
    found = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            for name, label in sample.labels.items():
                if name == "le":  # histogram bucket bounds are numbers we chose
                    continue
                compact = label.replace(" ", "").replace("-", "")
                if label in values or any(run in compact for run in runs):
                    found.append(label)
    return found
