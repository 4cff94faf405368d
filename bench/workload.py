"""The router benchmarks' workload: signed demo signals that bench/covenants fans out to 3
recipients, what the pure pipeline expects of them, and a publisher.

Used by bench/router.py (one worker against a passthrough) and bench/scale.py (1 and 2 worker
processes). Each signal gets a benchmark id and is then signed again with its partner's demo
TEST key (:class:`services.demo.keys.DemoSigner`): the signature covers the id, so a signal
re-id'd without re-signing is rejected as ``bad_signature`` — which is what the 2026-11 router
figures timed. :func:`expectation` refuses such a workload (:mod:`bench.verify`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.verify import Expectation, expect
from services.broker.settings import KafkaSettings
from services.config import Loaded, Paths, load_policy
from services.core.decision import exchange_id
from services.core.keys import KeyStore
from services.core.pseudonyms import Pseudonymiser
from services.demo import generate
from services.demo.keys import DemoSigner
from services.keys.testing import MemoryKeyStore
from services.router.policy_source import PolicySource
from services.router.topics import signals_topic

ROOT = Path(__file__).resolve().parent.parent
COVENANTS = ROOT / "bench" / "covenants"
TYPES = {
    "energy.consumption_anomaly.v1",
    "water.abnormal_use.v1",
    "housing.observation.v1",
    "residents.anonymous_tip.v1",
}
RECIPIENTS = ["riec-nh", "politie-nh", "gemeente-alkmaar"]
TODAY = date(2026, 11, 22)
TICK_S = 0.002

Signal = dict[str, Any]


def workload(count: int, seed: int, *, resign: bool = True, batch: int = 0) -> list[Signal]:
    """``count`` demo signals of the fanned-out types with ids ``bench-<seed>-<i>``, signed
    again after the re-id (``resign=False`` leaves the generator's now wrong signature: only
    for showing that the benchmarks refuse such a workload). With ``batch`` > 0 they are
    signed as the partner client signs by default: each run of ``batch`` consecutive signals
    together, per partner (a Merkle root signed once, each signal carrying its inclusion
    path; :meth:`services.demo.keys.DemoSigner.sign_batch`); else each on its own."""
    traffic = generate(count * 2, seed=seed, start=datetime(2026, 9, 1, tzinfo=UTC))
    signals = [s for s in traffic.signals if s["type"] in TYPES]
    sign = DemoSigner()
    out = []
    for i in range(count):
        signal = dict(signals[i % len(signals)])
        signal["id"] = f"bench-{seed}-{i}"
        out.append(sign(signal) if resign and batch < 1 else signal)
    if resign and batch > 0:
        return [s for at in range(0, count, batch) for s in sign.sign_batch(out[at : at + batch])]
    return out


KEYED = Pseudonymiser(MemoryKeyStore.for_tests())
"""The router's keys (deterministic TEST keys, the same in every benchmark process), for
:func:`feed_exchange_id` only: each policy gets a pseudonymiser of its own, so no cache warmed
here (or in a parent process) makes a timed router faster."""


def feed_exchange_id(source: str, signal_id: str, recipient: str) -> str:
    """The ``exchange_id`` of the feed message ``recipient`` gets for a signal: the hub's
    exchange id keyed by :meth:`~services.core.pseudonyms.Pseudonymiser.exchange_token`."""
    return KEYED.exchange_token(exchange_id(source, signal_id, recipient))


def policy_source(keys: KeyStore | None = None) -> PolicySource:
    """The benchmark covenants (TEST keys, so demo mode), pseudonyms under ``keys`` (default:
    the test key store), on a fixed day."""
    paths = Paths.from_env({})
    pseudonymiser = Pseudonymiser(keys or MemoryKeyStore.for_tests())

    def load(today: date) -> Loaded:
        return load_policy(
            [COVENANTS], paths.schemas, paths.reference, pseudonymiser, today=today, demo=True
        )

    return PolicySource(load, [COVENANTS], today=lambda: TODAY)


def encoded(signals: Sequence[Signal]) -> list[tuple[str, bytes]]:
    """``(partner, bytes as published)`` of each signal."""
    return [(str(s["source"]), orjson.dumps(s)) for s in signals]


def expectation(
    signals: Sequence[Signal], *, planted_rejections: int = 0, keys: KeyStore | None = None
) -> Expectation:
    """What the router must leave behind for ``signals`` (refuses a broken workload); the
    feeds' exchange ids are keyed, so ``keys`` must be the router's (default: the test keys)."""
    current = policy_source(keys).current
    return expect(
        encoded(signals),
        current.registry,
        current.policy,
        datetime.now(UTC),
        planted_rejections=planted_rejections,
    )


@dataclass(frozen=True)
class Published:
    sent_at: dict[tuple[str, str], float]
    """``(source, signal id)`` → ``time.perf_counter()`` when its send was handed over."""
    seconds: float

    @property
    def rate(self) -> float:
        return len(self.sent_at) / self.seconds if self.seconds > 0 else float("inf")


async def publish(
    settings: KafkaSettings, signals: Sequence[Signal], rate: float | None = None
) -> Published:
    """Send ``signals`` to their partners' topics, at a steady ``rate`` per second if given
    (what is due is sent every :data:`TICK_S` at least, so a busy machine does not make the
    publisher fall behind on wake-ups), and wait for every acknowledgement."""
    producer = AIOKafkaProducer(
        linger_ms=0 if rate else 5, max_batch_size=256 * 1024, **settings.client_kwargs_aiokafka()
    )
    await producer.start()
    sent_at: dict[tuple[str, str], float] = {}
    messages = encoded(signals)
    try:
        futures = []
        started = time.perf_counter()
        sent = 0
        while sent < len(messages):
            due = len(messages) if rate is None else int((time.perf_counter() - started) * rate) + 1
            for signal, (partner, value) in zip(signals[sent:due], messages[sent:due], strict=True):
                futures.append(await producer.send(signals_topic(partner), value))
                sent_at[(partner, str(signal["id"]))] = time.perf_counter()
            sent = max(sent, min(due, len(messages)))
            if rate is not None and sent < len(messages):
                await asyncio.sleep(max(started + sent / rate - time.perf_counter(), TICK_S))
        await asyncio.gather(*futures)
        seconds = time.perf_counter() - started
    finally:
        await producer.stop()
    return Published(sent_at, seconds)
