"""The router's faster murmur2 partitioner is Kafka's default mapping, bit for bit
(services/broker/partitioner.py): differential tests against aiokafka's own."""

from __future__ import annotations

import time

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from services.broker.partitioner import key_partitioner, murmur2

pytestmark = pytest.mark.timeout(120)


@settings(max_examples=2_000, deadline=None)
@given(st.binary(max_size=300))
def test_murmur2_is_kafkas_for_any_bytes(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


@settings(max_examples=1_000, deadline=None)
@given(st.binary(min_size=1, max_size=80), st.integers(min_value=1, max_value=64))
def test_a_keyed_message_goes_where_aiokafkas_default_partitioner_sends_it(
    key: bytes, partitions: int
) -> None:
    everything = list(range(partitions))
    assert key_partitioner(key, everything, everything) == DefaultPartitioner()(
        key, everything, everything
    )


def test_known_kafka_vectors() -> None:
    """Values the Java client gives (Kafka's own partitioner tests use these keys)."""
    assert murmur2(b"21") == aiokafka_murmur2(b"21")
    for key in (b"", b"a", b"ab", b"abc", b"abcd", b"abcde", "é-subject".encode()):
        assert murmur2(key) == aiokafka_murmur2(key)


def test_an_unkeyed_message_goes_to_an_available_partition() -> None:
    for _ in range(50):
        assert key_partitioner(None, [0, 1, 2, 3], [2]) == 2
    assert key_partitioner(None, [0, 1], []) in (0, 1)


def test_it_is_faster_than_aiokafkas_for_a_pseudonym_sized_key() -> None:
    key = b"P-7QX4MZ2KD5HN3RWT6YBC8VJFGLSA"
    rounds = 5_000

    def cost(fn: object) -> float:
        started = time.process_time()
        for _ in range(rounds):
            fn(key)  # type: ignore[operator]
        return time.process_time() - started

    assert cost(murmur2) < cost(aiokafka_murmur2)
