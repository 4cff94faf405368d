"""noida-db 0.2.3, a multi-service dev database whose Kafka service persists to disk.

The hub runs the native ``noida-db`` binary from the installed ``noida_db`` package with only
its Kafka service, bound to 127.0.0.1, and its data in the directory the hub gives it. It runs
the binary itself, not the ``noida-db`` console script: that script is a Python wrapper that
starts the binary as *its* child, so signals sent to the wrapper (SIGTERM, the parent-death
signal) would not reach the broker and a stop could leave it running.

What it offers over Tansu: correct end offsets, transactions and idempotent producers, group
joins in ~0.4 s, and persistence — topics, records and committed offsets are saved to
``kafka.json`` in the data dir on a clean stop (SIGTERM) and again and again while running,
and reloaded at start. Each save rewrites everything it holds, so a SIGKILL loses the
acknowledged records since the last completed save — about half a second of writes on a
nearly empty broker, several seconds once it holds 100k records (docs/architecture.md,
"Measurements"); records it acknowledges *while* it saves at a stop are lost too, so
everything that produces must stop before the broker does (``schakel up`` orders its stop so).
It is the default embedded broker. The binary needs glibc 2.34 or newer (it also
references two optional glibc 2.39 symbols, and the dynamic loader prints a harmless
"weak version `GLIBC_2.39' not found" line into ``noida.log`` on older glibc).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from services.broker.binaries import packaged_binary
from services.broker.embedded import BrokerKind, ChildProcessBroker
from services.broker.errors import BrokerError
from services.broker.process import LOOPBACK

NOIDA_PACKAGE = "noida_db"
MIN_GLIBC = (2, 34)
_TANSU_INSTEAD = (
    "SCHAKEL_EMBEDDED_BROKER=tansu (memory only: every restart loses all topics and messages)"
)


def noida_binary() -> Path:
    """The native noida-db executable inside the installed noida_db package."""
    return packaged_binary(
        NOIDA_PACKAGE, ("noida-db",), name="noida-db", requirement="noida-db==0.2.3"
    )


def glibc_version() -> tuple[int, int] | None:
    """The C library's version if it is glibc, else None (musl and non-Linux systems)."""
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return None
    if not text or not text.startswith("glibc "):
        return None
    major, _, minor = text.removeprefix("glibc ").partition(".")
    digits = "".join(ch for ch in minor if ch.isdigit())
    if not major.isdigit() or not digits:
        return None
    return int(major), int(digits)


class NoidaBroker(ChildProcessBroker):
    """noida-db's Kafka service on 127.0.0.1, data saved in its data dir on a clean stop."""

    kind: ClassVar[BrokerKind] = "noida"
    is_persistent: ClassVar[bool] = True
    has_transactions: ClassVar[bool] = True
    #: A stop writes everything the broker holds as JSON (~4 bytes per byte of payload) and a
    #: start reads it back: measured ~30 s each for 800 MB (200,000 records of 1 KB; a demo hub
    #: writes ~250 MB an hour) on a loaded 2-core machine. A stop cut short by SIGKILL loses
    #: every write since the last completed save, so the hub waits long rather than kill.
    default_stop_timeout: ClassVar[float] = 300.0
    default_startup_timeout: ClassVar[float] = 300.0

    def check_platform(self) -> None:
        version = glibc_version()
        if version is None:
            raise BrokerError(
                "noida-db needs glibc 2.34 or newer and this system does not use glibc; "
                f"use an external cluster (SCHAKEL_KAFKA_BOOTSTRAP) or {_TANSU_INSTEAD}"
            )
        if version < MIN_GLIBC:
            raise BrokerError(
                f"noida-db needs glibc 2.34 or newer, this system has "
                f"{version[0]}.{version[1]}; use an external cluster (SCHAKEL_KAFKA_BOOTSTRAP) "
                f"or {_TANSU_INSTEAD}"
            )

    def command(self, port: int) -> list[str]:
        return [
            str(noida_binary()),
            "start",
            "--only",
            "kafka",
            "--host",
            LOOPBACK,
            "--kafka-port",
            str(port),
            "--data-dir",
            str(self.data_dir),
        ]
