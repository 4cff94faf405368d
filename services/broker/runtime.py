"""Connecting the hub to Kafka: the external cluster if configured, else an embedded broker.

:func:`open_kafka` is the one switch between the two. With ``SCHAKEL_KAFKA_BOOTSTRAP`` set it
starts nothing and returns the external cluster's settings; without it, it starts the embedded
broker (``SCHAKEL_EMBEDDED_BROKER``, default noida) in the directory the hub owns and returns
settings pointing at it. Either way the caller gets a :class:`KafkaRuntime` whose ``settings``
configure every client, so no code changes between a laptop and a production cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.factory import broker_kind_from_env, make_broker
from services.broker.settings import KafkaSettings


@dataclass
class KafkaRuntime:
    """The cluster the hub uses, and the embedded broker behind it if the hub runs one."""

    settings: KafkaSettings
    broker: EmbeddedBroker | None = None

    def close(self) -> None:
        """Stop the embedded broker (gracefully, so a persistent one saves its data)."""
        if self.broker is not None:
            self.broker.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_kafka(
    data_dir: Path,
    environ: Mapping[str, str] | None = None,
    *,
    kind: BrokerKind | None = None,
    port: int | None = None,
) -> KafkaRuntime:
    """The external cluster from the environment, or a started embedded broker in ``data_dir``.

    ``kind`` overrides ``SCHAKEL_EMBEDDED_BROKER``; ``port`` fixes the embedded broker's
    loopback port (default: one the kernel picks). Both are ignored for an external cluster.
    """
    external = KafkaSettings.from_env(environ)
    if external is not None:
        return KafkaRuntime(settings=external)
    broker = make_broker(kind or broker_kind_from_env(environ), data_dir, port)
    broker.start()
    return KafkaRuntime(settings=KafkaSettings.local(broker.bootstrap), broker=broker)
