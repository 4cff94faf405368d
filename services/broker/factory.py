"""Choosing and building the embedded broker: ``make_broker`` and the default kind.

The default is noida-db: it keeps topics, messages and committed offsets across a stop and
start and has transactions — see docs/architecture.md ("Brokers") for the measurements behind
the choice. ``SCHAKEL_EMBEDDED_BROKER=tansu`` selects Tansu (memory only: a restart loses
everything) without a code change; an external cluster (``SCHAKEL_KAFKA_BOOTSTRAP``) replaces
both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from services.broker.embedded import BrokerKind, ChildProcessBroker, EmbeddedBroker
from services.broker.errors import BrokerError
from services.broker.noida import NoidaBroker
from services.broker.tansu import TansuBroker

DEFAULT_BROKER: BrokerKind = "noida"
ENV_EMBEDDED_BROKER = "SCHAKEL_EMBEDDED_BROKER"

_BROKERS: dict[BrokerKind, type[ChildProcessBroker]] = {
    "tansu": TansuBroker,
    "noida": NoidaBroker,
}


def make_broker(kind: BrokerKind, data_dir: Path, port: int | None = None) -> EmbeddedBroker:
    """An unstarted embedded broker of ``kind`` with its data in ``data_dir``.

    ``port`` None lets the kernel pick a free loopback port at the first start; the broker
    keeps it for restarts.
    """
    try:
        broker_class = _BROKERS[kind]
    except KeyError:
        raise BrokerError(
            f"unknown embedded broker {kind!r}; use one of {', '.join(_BROKERS)}"
        ) from None
    return broker_class(data_dir, port)


def broker_kind_from_env(environ: Mapping[str, str] | None = None) -> BrokerKind:
    """The embedded broker named by ``SCHAKEL_EMBEDDED_BROKER``, or the default."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_EMBEDDED_BROKER, "").strip().lower()
    if not value:
        return DEFAULT_BROKER
    for kind in _BROKERS:
        if value == kind:
            return kind
    raise BrokerError(
        f"{ENV_EMBEDDED_BROKER}={value!r} is not an embedded broker; use one of "
        f"{', '.join(_BROKERS)}"
    )
