"""A fresh embedded broker with the topics a measurement needs, in a scratch directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from services.broker.embedded import BrokerKind, EmbeddedBroker
from services.broker.factory import make_broker
from services.broker.settings import KafkaSettings
from services.broker.topics import KafkaTopicAdmin


@contextmanager
def scratch_broker(
    kind: BrokerKind, topics: Mapping[str, int], prefix: str = "schakel-bench-"
) -> Iterator[tuple[EmbeddedBroker, KafkaSettings, Path]]:
    """A started broker of ``kind`` holding ``topics`` (name → partitions), its client
    settings and a scratch directory beside it; stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        tmp = Path(name)
        broker = make_broker(kind, tmp / "broker")
        broker.start()
        try:
            settings = KafkaSettings.local(broker.bootstrap)
            with KafkaTopicAdmin(settings) as admin:
                admin.ensure_topics(dict(topics))
            yield broker, settings, tmp
        finally:
            broker.stop()
